"""A test process's side of the run: the process that collects the problems and runs
their samples (the only process without xdist; each xdist worker with it).

It takes its :class:`Assignment` from the controller (from ``workerinput`` under xdist),
submits samples to its sandbox runner far ahead of the item that reports them (see
:mod:`pytest_passk.lookahead`), and runs sample items through a lean runtest protocol.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from .batches import sample_row
from .cpus import samples_at_once
from .items import ProblemItem, SampleItem, by_problem
from .lookahead import Lookahead
from .options import Settings
from .plus.suite import problems_of
from .problems import Problem
from .sandbox.runner import SampleRunner
from .sources.completions import CompletionPlan
from .verdicts import SampleId, SampleRecord

__all__ = ["WORKER_KEY", "WORKERINPUT_KEY", "Assignment", "Worker", "run_sample_protocol"]

WORKERINPUT_KEY = "passk"
# xdist's schedules that keep each problem's samples on one worker, and the one that
# deals problems to workers in advance (ProblemScheduling).
GROUPING_SCHEDULES = ("load", "loadscope", "loadfile", "each")
DEALING_SCHEDULE = "load"


@dataclass(frozen=True)
class Assignment:
    """What the controller hands every test process: the completions to evaluate, the
    samples whose verdicts an interrupted run recorded, xdist's schedule, for
    workers on other hosts the problem files (by path under the rootdir), and the
    problems of known cost, the costliest first (``order``, by suite and task id: each
    worker orders its collection by it, alike, see :func:`scheduling.costliest_first`).

    A model run's completions are drawn only for the problems pytest selects, so they
    come after collection: until then ``plan`` is None, and each problem gets
    ``samples_each`` items at each of ``temperatures``, in that order (the order the
    model step numbers them in); :meth:`settle` adds the plan and the recorded verdicts.
    """

    plan: CompletionPlan | None
    known: dict[SampleId, SampleRecord] = field(default_factory=dict)
    dist: str = "no"
    problem_files: dict[str, bytes] = field(default_factory=dict)
    samples_each: int = 0
    temperatures: tuple[float, ...] = ()
    order: tuple[tuple[str, str], ...] = ()

    def sample_temperatures(self, problem: Problem) -> list[float | None]:
        """The temperature of each of the problem's samples, in index order (None where unknown)."""
        if self.plan is None:
            return [t for t in self.temperatures for _ in range(self.samples_each)]
        return self.plan.temperatures_for(problem)

    @property
    def study(self) -> bool:
        """Whether the run samples at more than one temperature."""
        return len(self.temperatures) > 1 if self.plan is None else self.plan.study

    def settle(self, plan: CompletionPlan, known: dict[SampleId, SampleRecord]) -> Assignment:
        return dataclasses.replace(self, plan=plan, known=known)

    def to_workerinput(self) -> dict[str, Any]:
        """As plain data, which is all execnet carries."""
        return {"plan": None if self.plan is None else self.plan.to_plain(), "known": known_to_plain(self.known),
                "dist": self.dist, "problem_files": self.problem_files, "samples_each": self.samples_each,
                "temperatures": list(self.temperatures), "order": [list(key) for key in self.order]}

    @classmethod
    def from_workerinput(cls, data: dict[str, Any]) -> Assignment:
        plan = None if data["plan"] is None else CompletionPlan.from_plain(data["plan"])
        return cls(plan, known_from_plain(data["known"]), data["dist"], data["problem_files"], data["samples_each"],
                   tuple(data["temperatures"]), tuple((str(suite), str(task_id)) for suite, task_id in data["order"]))


def known_to_plain(known: dict[SampleId, SampleRecord]) -> list[dict[str, Any]]:
    return [record.to_properties() for record in known.values()]


def known_from_plain(data: list[dict[str, Any]]) -> dict[SampleId, SampleRecord]:
    records = (SampleRecord.from_properties(values) for values in data)
    return {record.sample_id: record for record in records}


class Worker:
    """Registered as the plugin ``passk-worker`` in every process that may run samples."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
        self.assignment: Assignment | None = None  # the controller's, set at the session's start
        # Under xdist, a model run's channel from the controller: the samples come on it after collection.
        self.delivery: Any = None
        # Under per-problem scheduling, the channel this worker's problems' records go back on.
        self.results: Any = None
        self._runner: SampleRunner | None = None
        self.lookahead = Lookahead()
        # Under per-problem scheduling: the problems dealt to this worker (a sample of each, by
        # scope), and those another worker took over (see ProblemScheduling).
        self.scopes: dict[str, SampleItem] = {}
        self.scope_of: dict[tuple[str, str], str] = {}
        self.taken: set[tuple[str, str]] = set()

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.workerinput is None:
            return  # the controller in this process hands over the assignment
        data = self.workerinput[WORKERINPUT_KEY]
        self.assignment = Assignment.from_workerinput(data)
        self.delivery = data.get("delivery")
        self.results = data.get("results")
        if self.results is not None:
            self.results.setcallback(self.taken_over)
        place_problem_files(self.config.rootpath, self.assignment.problem_files)

    def started(self, problem: Problem) -> None:
        """The fork server started one of this worker's dealt problems: no other takes it over."""
        scope = self.scope_of.get((problem.suite, problem.task_id))
        if scope is not None:
            self.results.send({"started": scope})

    def taken_over(self, message: Any) -> None:
        """In execnet's receiver thread: another worker runs this problem (it was dealt here and
        submitted ahead): submit no more of it, and the fork server drops what it has not started."""
        try:
            sample = self.scopes.get(message["taken"])
            if sample is not None:
                self.taken.add(sample.group_key)
                if self._runner is not None:
                    self._runner.withdraw(sample.problem)
        except Exception:  # noqa: BLE001 - an exception here would close the channel the records go back on
            pass

    def settled(self) -> Assignment:
        """The assignment with its completions; under xdist a model run's arrive from the
        controller once it has sampled what the workers' collection selected."""
        assignment = self.assignment
        assert assignment is not None, "the controller assigns the samples at the session's start"
        if assignment.plan is None:
            assert self.delivery is not None, "without xdist the controller settles the samples at collection's end"
            try:
                data = self.delivery.receive()
            except Exception as exc:  # the controller gave up (a usage error, an interrupt) and closed the channel
                pytest.exit(f"passk: no samples came from the controller ({type(exc).__name__})",
                            returncode=pytest.ExitCode.INTERRUPTED)
            plan = CompletionPlan.from_plain(data["plan"])
            self.assignment = assignment = assignment.settle(plan, known_from_plain(data["known"]))
        return assignment

    def problems_in(self, path: Path) -> list[Problem]:
        """The problems of a file this process collects (HumanEval+'s expected outputs: from the
        cache, where the controller put them before any test process started)."""
        settings = self.settings
        return problems_of(self.config, path, settings.cache_dir, settings.plus_timing)

    def sample_temperatures(self, problem: Problem) -> list[float | None]:
        assert self.assignment is not None, "the controller assigns the samples at the session's start"
        return self.assignment.sample_temperatures(problem)

    @property
    def study(self) -> bool:
        assert self.assignment is not None, "the controller assigns the samples at the session's start"
        return self.assignment.study

    @property
    def skip_reason(self) -> str:
        assert self.assignment is not None and self.assignment.plan is not None, "a model run skips no problem"
        return self.assignment.plan.skip_reason

    def completion(self, problem: Problem, index: int) -> str | None:
        completions = self.settled().plan.for_problem(problem)  # type: ignore[union-attr]
        return completions[index] if 0 <= index < len(completions) else None

    @property
    def runner(self) -> SampleRunner:
        """This process's runner, started on first use."""
        if self._runner is None:
            settings = self.settings
            # Each process that runs samples gets its share of its machine's cores for them: an
            # xdist worker counts the workers on its machine (the controller tells each).
            workers = int(self.workerinput[WORKERINPUT_KEY]["host_processes"]) if self.workerinput else 1
            self._runner = SampleRunner(
                settings.limits,
                settings.env_passthrough,
                samples_at_once(workers),
                settings.deduplicate,
                isolation=settings.isolation,
                known=self.settled().known,
                suspicious_passes=settings.suspicious_passes,
                on_started=self.started if self.results is not None else None,
            )
        return self._runner

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config,
                                      items: list[pytest.Item]) -> None:
        """Remember which samples this process will run, and in what order, as far as the
        schedule tells: all of them without xdist, the dealt problems' under per-problem
        scheduling, and whole problems wherever the schedule keeps them together."""
        workerinput = self.workerinput
        dist = self.assignment.dist if self.assignment else "no"
        if workerinput is not None and dist == DEALING_SCHEDULE and self.assignment is not None:
            from .scheduling import costliest_first

            costliest_first(items, self.assignment.order)
        samples = [item for item in items if isinstance(item, SampleItem) and item.index >= 0]
        groups: dict[Any, list[Any]] = {}
        if workerinput is None or dist in GROUPING_SCHEDULES:
            for item in samples:
                groups.setdefault(item.group_key, []).append(item)
        ordered: list[SampleItem] = []
        if workerinput is None:  # one process runs every item, in this order
            ordered = samples
        elif dist == DEALING_SCHEDULE:  # per-problem scheduling dealt this worker its problems
            from .scheduling import owned_scopes, problem_scope, worker_index

            mine = owned_scopes((item.nodeid for item in items), worker_index(workerinput["workerid"]),
                                int(workerinput["workercount"]))
            ordered = [item for item in samples if problem_scope(item.nodeid) in mine]
            self.scopes = {problem_scope(item.nodeid): item for item in ordered}
            self.scope_of = {(item.problem.suite, item.problem.task_id): scope for scope, item in self.scopes.items()}
        self.lookahead = Lookahead(ordered, groups)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Under per-problem scheduling, each problem's selected samples become one item, before
        xdist sends this worker's collection: the controller then handles an event per problem,
        not several per sample (see :mod:`pytest_passk.batches`)."""
        if self.results is not None:  # the controller opens it under per-problem scheduling only
            session.items[:] = by_problem(session.items)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
        if isinstance(item, ProblemItem):
            self.run_problem(item, nextitem)
            return True
        if not isinstance(item, SampleItem):
            return None
        if item.index >= 0:
            # Queue what comes next: it runs in the fork server while pytest reports this item.
            following = nextitem if isinstance(nextitem, SampleItem) and nextitem.index >= 0 else None
            self.submit_ahead(item, following)
        run_sample_protocol(item, nextitem)
        return True

    def submit_ahead(self, item: SampleItem, following: SampleItem | None) -> None:
        runner, taken = self.runner, self.taken
        for upcoming in self.lookahead.upcoming(item, following):
            if upcoming.group_key not in taken:
                upcoming.submit(runner)  # type: ignore[attr-defined]

    def run_problem(self, item: ProblemItem, nextitem: pytest.Item | None) -> None:
        """Run a problem's samples, submitting ahead as a sample item would, and send their
        records to the controller in one message."""
        runner = self.runner
        samples = item.samples
        after = nextitem.samples[0] if isinstance(nextitem, ProblemItem) else None
        rows = []
        for position, sample in enumerate(samples):
            following = samples[position + 1] if position + 1 < len(samples) else after
            self.submit_ahead(sample, following)
            started = time.perf_counter()
            sample.submit(runner)
            record = runner.result(sample.nodeid).at_temperature(sample.temperature)
            rows.append(sample_row(sample.nodeid, sample.location, record, time.perf_counter() - started))
        self.results.send({"problem": item.nodeid, "samples": rows})

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self._runner is not None:
            self._runner.close()
            self._runner = None


WORKER_KEY = pytest.StashKey[Worker]()


def place_problem_files(rootpath: Path, files: dict[str, bytes]) -> None:
    """On a worker on another host: write the problem files the controller sent where
    collection finds them, at the same paths under the rootdir, so that node ids match."""
    for relative, data in files.items():
        target = rootpath / relative
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)


# A leaner runtest protocol for sample items. pytest reports every item three times
# (setup, call, teardown); under xdist each report is serialized, sent to the controller
# and replayed there, which costs as much as running a sample. A sample has no fixtures,
# so its setup and teardown say nothing unless they fail: this still runs all three
# phases through pytest's own hooks (capture, logging, skip marks, -x all work), but
# logs the setup and teardown reports only when they are not plain passes.

def _run_phase(item: pytest.Item, when: Literal["setup", "call", "teardown"], always_report: bool,
               **kwargs: object) -> bool:
    """Run one phase; log its report if it failed, was skipped, or ``always_report``. True if it passed."""
    ihook = item.ihook
    hook = {"setup": ihook.pytest_runtest_setup, "call": ihook.pytest_runtest_call,
            "teardown": ihook.pytest_runtest_teardown}[when]
    reraise: tuple[type[BaseException], ...] = (pytest.exit.Exception,)
    if not item.config.getoption("usepdb", False):
        reraise += (KeyboardInterrupt,)
    call = pytest.CallInfo.from_call(lambda: hook(item=item, **kwargs), when=when, reraise=reraise)
    if call.excinfo is None and not always_report:
        return True
    report: pytest.TestReport = ihook.pytest_runtest_makereport(item=item, call=call)
    ihook.pytest_runtest_logreport(report=report)
    if call.excinfo is not None and report.failed and not isinstance(call.excinfo.value, pytest.skip.Exception):
        ihook.pytest_exception_interact(node=item, call=call, report=report)
    return report.passed


def run_sample_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    if _run_phase(item, "setup", always_report=False):
        _run_phase(item, "call", always_report=True)
    if item.session.shouldfail or item.session.shouldstop:
        nextitem = None
    _run_phase(item, "teardown", always_report=False, nextitem=nextitem)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
