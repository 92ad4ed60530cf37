"""Problem files as pytest collectors and samples as pytest items."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .sources.completions import SamplePlan
from .sandbox.runner import Outcome, SampleRunner
from .problems import Problem, ProblemFileError, load_problem_file
from .state import PLAN_KEY, sample_runner

__all__ = ["ProblemFile", "SampleItem", "SampleFailed"]


class SampleFailed(Exception):
    """A sample's verdict was not ``passed``; carries the outcome for the report."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(f"{outcome.verdict}: {outcome.message}")
        self.outcome = outcome


class ProblemFile(pytest.File):
    """A file of problems; one item per problem and sample index, in file order."""

    def collect(self) -> Iterator[SampleItem]:
        plan: SamplePlan = self.config.stash[PLAN_KEY]
        for problem in load_problem_file(self.path):
            completions = plan.for_problem(problem)
            if not completions:
                item = SampleItem.from_parent(self, name=problem.task_id, problem=problem, index=-1, completion=None)
                item.add_marker(pytest.mark.skip(reason=plan.skip_reason))
                yield item
            for index, completion in enumerate(completions):
                name = f"{problem.task_id}[{index}]"
                # The node id given whole, so that pytest >= 9.2 parses "[index]" as the
                # parametrization, as it does for ids read back from its cache (--lf, --ff, --sw).
                yield SampleItem.from_parent(self, name=name, nodeid=f"{self.nodeid}::{name}", problem=problem,
                                             index=index, completion=completion)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str:  # type: ignore[override]
        if isinstance(excinfo.value, ProblemFileError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))


class SampleItem(pytest.Item):
    """One sample of one problem: passes when the problem's check passes on it."""

    def __init__(self, *, problem: Problem, index: int, completion: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.problem = problem
        self.index = index
        self.completion = completion

    @property
    def group_key(self) -> tuple[str, str]:
        return (str(self.path), self.problem.task_id)

    def submit(self, runner: SampleRunner) -> None:
        runner.submit(self.nodeid, self.problem, self.completion)

    def runtest(self) -> None:
        runner = sample_runner(self.config)
        self.submit(runner)  # unless the protocol already submitted it ahead
        outcome = runner.result(self.nodeid)
        self.user_properties.append(
            (
                "passk",
                {
                    "suite": self.problem.suite,
                    "task_id": self.problem.task_id,
                    "index": self.index,
                    "verdict": outcome.verdict,
                    "message": outcome.message,
                    "seconds": round(outcome.seconds, 6),
                    "shared": runner.shares_verdict(self.nodeid),
                    "key": runner.journal_key(self.nodeid),
                    "resumed": runner.was_resumed(self.nodeid),
                },
            )
        )
        if not outcome.passed:
            raise SampleFailed(outcome)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, SampleFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style))

    def reportinfo(self) -> tuple[Any, int, str]:
        return self.path, 0, self.name
