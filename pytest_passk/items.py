"""Problem files as pytest collectors and samples as pytest items."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from .batches import problem_item_name
from .problems import Problem, ProblemFileError
from .sandbox.runner import SampleRunner
from .sources.sampling import temperature_label
from .verdicts import SampleRecord

__all__ = ["ProblemFile", "SampleItem", "ProblemItem", "SampleFailed", "Execution", "sample_labels", "by_problem"]


class Execution(Protocol):
    """Where items learn how many samples a problem has (and at which temperatures), get
    their completions and run (the test process's worker)."""

    def problems_in(self, path: Path) -> list[Problem]: ...

    def sample_temperatures(self, problem: Problem) -> list[float | None]: ...

    @property
    def study(self) -> bool: ...

    @property
    def skip_reason(self) -> str: ...

    def completion(self, problem: Problem, index: int) -> str | None: ...

    @property
    def runner(self) -> SampleRunner: ...


class SampleFailed(Exception):
    """A sample's verdict was not ``passed``; carries the record for the report."""

    def __init__(self, record: SampleRecord) -> None:
        super().__init__(f"{record.verdict}: {record.message}")
        self.record = record


def sample_labels(temperatures: list[float | None], study: bool) -> list[str]:
    """What the brackets of a problem's sample node ids say: the sample index, or in a
    temperature study the temperature and the index among that temperature's samples
    (``T0.8-17``), so that ``-k T0.8-`` and ``--lf`` can pick one temperature."""
    if not study:
        return [str(index) for index in range(len(temperatures))]
    seen: Counter[float | None] = Counter()
    labels = []
    for temperature in temperatures:
        labels.append(f"{'T?' if temperature is None else temperature_label(temperature)}-{seen[temperature]}")
        seen[temperature] += 1
    return labels


class ProblemFile(pytest.File):
    """A file of problems; one item per problem and sample index, in file order."""

    def __init__(self, *, execution: Execution, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.execution = execution

    def collect(self) -> Iterator[SampleItem]:
        execution = self.execution
        study = execution.study
        for problem in execution.problems_in(self.path):
            temperatures = execution.sample_temperatures(problem)
            if not temperatures:
                item = SampleItem.from_parent(self, name=problem.task_id, problem=problem, index=-1)
                item.add_marker(pytest.mark.skip(reason=execution.skip_reason))
                yield item
            for index, label in enumerate(sample_labels(temperatures, study)):
                name = f"{problem.task_id}[{label}]"
                # The node id given whole, so that pytest >= 9.2 parses "[index]" as the
                # parametrization, as it does for ids read back from its cache (--lf, --ff, --sw).
                yield SampleItem.from_parent(self, name=name, nodeid=f"{self.nodeid}::{name}", problem=problem,
                                             index=index, temperature=temperatures[index])

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str:  # type: ignore[override]
        if isinstance(excinfo.value, ProblemFileError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))


class SampleItem(pytest.Item):
    """One sample of one problem: passes when the problem's check passes on it. Its
    completion is looked up when it runs: a model samples only the selected problems,
    after collection."""

    parent: ProblemFile

    def __init__(self, *, problem: Problem, index: int, temperature: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.problem = problem
        self.index = index
        self.temperature = temperature

    @property
    def completion(self) -> str | None:
        return self.parent.execution.completion(self.problem, self.index)

    @property
    def group_key(self) -> tuple[str, str]:
        return (str(self.path), self.problem.task_id)

    def submit(self, runner: SampleRunner) -> None:
        runner.submit(self.nodeid, self.problem, self.index, self.completion)

    def runtest(self) -> None:
        runner = self.parent.execution.runner
        self.submit(runner)  # unless the protocol already submitted it ahead
        record = runner.result(self.nodeid).at_temperature(self.temperature)
        self.user_properties.append(("passk", record.to_properties()))
        if not record.passed:
            raise SampleFailed(record)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, SampleFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style))

    def reportinfo(self) -> tuple[Any, int, str]:
        return self.path, 0, self.name


class ProblemItem(pytest.Item):
    """A problem's selected samples as one item, which an xdist worker runs and reports in
    one message (see :mod:`pytest_passk.batches`); the samples keep their node ids."""

    parent: ProblemFile

    def __init__(self, *, samples: list[SampleItem], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.samples = samples

    def runtest(self) -> None:  # the worker's protocol runs the samples (Worker.run_problem)
        raise NotImplementedError("a problem item runs through the worker's batch protocol")

    def reportinfo(self) -> tuple[Any, int, str]:
        return self.path, 0, self.name


def by_problem(items: list[pytest.Item]) -> list[pytest.Item]:
    """``items`` with each problem's samples made one :class:`ProblemItem`, where its first
    sample was; other items (a problem without samples, other tests) as they were."""
    grouped: dict[tuple[Any, str], list[SampleItem]] = {}
    for item in items:
        if isinstance(item, SampleItem) and item.index >= 0:
            grouped.setdefault((item.parent, item.problem.task_id), []).append(item)
    regrouped: list[pytest.Item] = []
    for item in items:
        if not isinstance(item, SampleItem) or item.index < 0:
            regrouped.append(item)
            continue
        samples = grouped.pop((item.parent, item.problem.task_id), None)
        if samples is None:
            continue  # placed with its problem's first sample
        name = problem_item_name(item.problem.task_id, len(samples))
        regrouped.append(ProblemItem.from_parent(item.parent, name=name, nodeid=f"{item.parent.nodeid}::{name}",
                                                 samples=samples))
    return regrouped
