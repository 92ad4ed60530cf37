"""The controller: what happens once per run, in the process pytest was started in.

Without xdist that process also runs the samples (see :mod:`pytest_passk.worker`);
with xdist it is xdist's controller and never collects. At the start it probes the
sandbox, opens the verdict journal, decides the completions (a file, the reference
solutions, or a model sampled here, once, for the problems pytest selected) and hands
each test process its :class:`~pytest_passk.worker.Assignment`; during the run it gathers every sample's
record from the reports; at the end it scores, judges the gates, writes the reports
and sets the exit status.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from . import __version__
from .batches import BATCH_CHANNELS, RUN_SESSION, WorkerChannel
from .gates import GATE_FAILED, Baseline, GateError, GateVerdicts, judge
from .hosts import LOCAL, host_of, processes_by_host
from .items import SampleItem
from .options import Settings, check_output_paths
from .plus.figures import base_records
from .plus.suite import problems_of
from .problems import Problem, ProblemFileError, discover_problem_files
from .report.document import problems_hash, report_document, write_json
from .report.junit import add_junit_properties
from .report.terminal import (generation_line, header_lines, is_sample_report, per_sample_output, resume_line,
                              write_failures_by_problem, write_summary)
from .sandbox.journal import VerdictJournal, verdict_key
from .sandbox.runner import IsolationReport, probe_isolation
from .scoring.analysis import Analysis, analyse
from .scoring.summary import SuiteSummary, summarize
from .sources.completions import CompletionPlan, CompletionsFileError, read_completions
from .sources.generation import GenerationReport
from .sources.sampling import ModelLoadError
from .timing import RunClock, timing_line
from .verdicts import SampleId, SampleRecord
from .worker import DEALING_SCHEDULE, WORKER_KEY, WORKERINPUT_KEY, Assignment, known_to_plain

__all__ = ["CONTROLLER_KEY", "Controller", "GateExitStatus", "XdistController"]


class Controller:
    """Registered as the plugin ``passk-controller`` in the process pytest was started in."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self._problem_paths: list[Path] | None = None
        self._problems_by_path: dict[Path, list[Problem]] | None = None
        self._problems: dict[tuple[str, str], Problem] | None = None
        self.plan = CompletionPlan()
        self.assignment = Assignment(None)
        self.assigned = False
        self.isolation: IsolationReport | None = None
        self.journal: VerdictJournal | None = None
        self.baseline: Baseline | None = None
        self.generation: GenerationReport | None = None
        self.records: list[SampleRecord] = []
        self.harness_errors = 0  # errors of the harness (not of samples): collection, dead workers, runner failures
        self.summaries: list[SuiteSummary] = []
        self.analysis = Analysis()
        self.gates = GateVerdicts()
        self.report_errors: list[str] = []  # reports that could not be written, one line each
        self.clock = RunClock()

    @property
    def problem_paths(self) -> list[Path]:
        """The problem files collecting this run's arguments reaches, found once."""
        if self._problem_paths is None:
            self._problem_paths = discover_problem_files(self.config.args, self.config.rootpath)
        return self._problem_paths

    @property
    def problems_by_path(self) -> dict[Path, list[Problem]]:
        """The problems this run reaches, by file, read once; broken files are left to
        collection to report."""
        if self._problems_by_path is None:
            self._problems_by_path = {}
            for path in self.problem_paths:
                try:
                    self._problems_by_path[path] = problems_of(self.config, path, self.settings.cache_dir,
                                                               self.settings.plus_timing, self._say)
                except ProblemFileError:
                    continue
        return self._problems_by_path

    @property
    def problems(self) -> dict[tuple[str, str], Problem]:
        """The problems this run reaches, by (suite, task id); built once (every record looks its problem up)."""
        if self._problems is None:
            self._problems = {(p.suite, p.task_id): p for problems in self.problems_by_path.values() for p in problems}
        return self._problems

    # -- the start ------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Check the run's settings and probe the sandbox, before pytest's header (which shows it)."""
        settings = self.settings
        self.clock.start_session()
        self.config.stash[RUN_SESSION] = session
        check_output_paths(self.config, settings)
        if settings.baseline is not None:
            try:
                self.baseline = Baseline.read(settings.baseline)
            except GateError as exc:
                raise pytest.UsageError(str(exc)) from None
        if self.problem_paths:  # a test run that reaches no problem has nothing to isolate or record
            self._prepare_execution()

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> None:
        """Without xdist: the samples are decided after pytest's header, before collection."""
        self.assign()

    def assign(self) -> None:
        """Decide the samples once, after pytest's header and before any test process
        collects: without xdist at collection, with it as xdist sets up its workers. A
        model is sampled later, once pytest has selected what runs (:meth:`sample_selected`)."""
        if self.assigned:
            return
        self.assigned = True
        # Read the problems here, before any test process collects: HumanEval+'s expected
        # outputs are computed (and cached for the test processes) as they are read.
        assert self.problems_by_path is not None
        dist = str(self.config.getoption("dist", "no"))
        order = self.cost_ranking()
        if self.settings.model is not None:
            sampling = self.settings.sampling
            self._hand_over(Assignment(None, dist=dist, samples_each=sampling.samples, temperatures=sampling.temperatures,
                                       order=order))
            return
        self.plan = self._plan()
        self._hand_over(Assignment(self.plan, known=self._recorded_verdicts(), dist=dist, order=order))

    def cost_ranking(self) -> tuple[tuple[str, str], ...]:
        """The problems of known cost (HumanEval+'s: the reference's seconds), the costliest first."""
        costed = [(problem.cost, key) for key, problem in self.problems.items() if problem.cost]
        return tuple(key for _, key in sorted(costed, key=lambda pair: -pair[0]))

    def _hand_over(self, assignment: Assignment) -> None:
        self.assignment = assignment
        if assignment.known:
            self._say(resume_line(len(assignment.known)))
        if WORKER_KEY in self.config.stash:  # this process runs the samples too (no xdist)
            self.config.stash[WORKER_KEY].assignment = assignment

    @property
    def sampled(self) -> bool:
        """Whether the completions are decided (a model run's only after selection)."""
        return self.assignment.plan is not None

    def sample_selected(self, problems: list[Problem]) -> None:
        """A model run: sample the problems pytest selected, once, here (nothing when none is)."""
        if self.sampled:
            return
        self.plan = self._generate(problems) if problems else CompletionPlan()
        self._hand_over(self.assignment.settle(self.plan, self._recorded_verdicts()))

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Without xdist, a model run samples here: after pytest's selection (``-k``, ``-m``,
        ``--deselect``, ``--lf``, node ids) and its "collected" line, before any item runs."""
        if self.sampled or self.config.option.collectonly:
            return
        selected: dict[tuple[str, str], Problem] = {}
        for item in session.items:
            if isinstance(item, SampleItem):
                selected.setdefault((item.problem.suite, item.problem.task_id), item.problem)
        self.sample_selected(list(selected.values()))

    def selected_problems(self, nodeids: Iterable[str]) -> list[Problem]:
        """The problems of the sample items with these node ids (an xdist worker's collection,
        after pytest's selection), in order."""
        from .scheduling import problem_scope

        rootpath = self.config.rootpath
        files = {path.resolve(): {p.task_id: p for p in problems} for path, problems in self.problems_by_path.items()}
        paths: dict[str, Path] = {}  # a node id's file part -> its file, found once per file, not per sample

        def file_of(file_part: str) -> Path:
            path = (rootpath / file_part).resolve()
            if path not in files:  # a file outside the rootdir: its node id is relative to an argument
                path = next((p for p in files if p.as_posix().endswith("/" + file_part.lstrip("./"))), path)
            return path

        selected: dict[tuple[Path, str], Problem] = {}
        for nodeid in nodeids:
            scope = problem_scope(nodeid)
            if scope == nodeid:
                continue  # not a sample
            file_part, _, task_id = scope.partition("::")
            path = paths.get(file_part) or paths.setdefault(file_part, file_of(file_part))
            problem = files.get(path, {}).get(task_id)
            if problem is not None:
                selected.setdefault((path, task_id), problem)
        return list(selected.values())

    def _prepare_execution(self) -> None:
        """Find out which isolation samples will get (refusing a strict run without it),
        and open the verdict journal, reading it back when resuming."""
        settings = self.settings
        try:
            self.isolation = probe_isolation(settings.isolation, settings.limits.memory)
        except OSError as exc:
            raise pytest.UsageError(f"passk: cannot start the sample runner: {exc}") from None
        if settings.isolation == "strict" and self.isolation.missing:
            missing = ", ".join(f"{layer} ({why})" for layer, why in self.isolation.missing.items())
            raise pytest.UsageError(f"passk: --passk-isolation=strict, but not available here: {missing}")
        try:
            self.journal = VerdictJournal(settings.cache_dir / "verdicts.jsonl", resume=settings.resume)
        except OSError as exc:
            raise pytest.UsageError(f"passk: cannot write the verdict journal in {settings.cache_dir}: {exc}") from None

    def _plan(self) -> CompletionPlan:
        settings = self.settings
        if settings.completions is None:
            return CompletionPlan(reference=True)
        try:
            return read_completions(settings.completions, {task_id for _, task_id in self.problems} or None)
        except CompletionsFileError as exc:
            raise pytest.UsageError(str(exc)) from None

    def _say(self, line: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(line)

    def _generate(self, problems: list[Problem]) -> CompletionPlan:
        """Sample these problems from the model, once, here."""
        settings = self.settings
        assert settings.model is not None
        from .sources.generation import generate_completions

        self.clock.sampling_start = time.monotonic()
        try:
            report = generate_completions(
                problems,
                settings.model,
                settings.sampling,
                settings.cache_dir,
                regenerate=settings.regenerate,
                quiet=self.config.getoption("verbose") < 0,
                say=self._say,
            )
        except ModelLoadError as exc:
            raise pytest.UsageError(str(exc)) from None
        except ImportError as exc:
            needs = "the openai client" if settings.model.served else "torch and transformers"
            extra = "serve" if settings.model.served else "model"
            raise pytest.UsageError(f"--model needs {needs}: pip install 'pytest-passk[{extra}]' ({exc})") from None
        except Exception as exc:  # a device error, a model that breaks midway: finished batches are cached
            first_line = (str(exc).strip().splitlines() or [""])[0]
            pytest.exit(
                f"passk: sampling from {settings.model.model} failed ({type(exc).__name__}: {first_line}); "
                "the samples finished so far are cached and a rerun continues from them",
                returncode=pytest.ExitCode.INTERNAL_ERROR,
            )
        self.clock.sampling_end = time.monotonic()
        self.generation = report
        self._say(generation_line(report))
        if settings.save_completions is not None:
            report.plan.write_jsonl(settings.save_completions)
        return report.plan

    def verdict_key(self, problem: Problem, completion: str | None) -> str:
        limits = self.settings.limits
        return verdict_key(problem, completion, limits.timeout, limits.memory, self.settings.isolation)

    def _recorded_verdicts(self) -> dict[SampleId, SampleRecord]:
        """The samples whose verdicts an interrupted run recorded (with ``--passk-resume``)."""
        if self.journal is None or not self.journal.known:
            return {}
        known = {}
        for problem in self.problems.values():
            for index, completion in enumerate(self.plan.for_problem(problem)):
                entry = self.journal.known.get(self.verdict_key(problem, completion))
                if entry is not None:
                    known[(problem.suite, problem.task_id, index)] = entry.for_sample(problem.suite, problem.task_id, index)
        return known

    def pytest_report_header(self, config: pytest.Config) -> list[str] | None:
        return header_lines(self.isolation, local_test_processes(config)) or None

    # -- during the run -------------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Each sample's record, from its call report (from any worker)."""
        if report.when != "call":
            if report.failed:  # a setup or teardown error, or a worker that died
                self.harness_errors += 1
            return
        for name, value in report.user_properties:
            if name == "passk":
                record = SampleRecord.from_properties(value)  # type: ignore[arg-type]
                self.records.append(record)
                self.harness_errors += not record.counted
                self._journal(record)

    def _journal(self, record: SampleRecord) -> None:
        problem = self.problems.get((record.suite, record.task_id))
        if self.journal is None or record.resumed or problem is None:
            return
        completions = self.plan.for_problem(problem)
        if record.index < len(completions):
            self.journal.record(self.verdict_key(problem, completions[record.index]), record)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:  # a broken problem file
            self.harness_errors += 1

    # -- the end --------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Conclude before other plugins finish (junitxml writes its file then)."""
        settings = self.settings
        self.clock.finish = time.monotonic()
        if self.journal is not None:
            self.journal.close()
        if not self.records:
            return
        problems = list(self.problems.values())
        # HumanEval+'s samples count twice: with every test, and with the base tests alone.
        scored = self.records + base_records(self.records, {p.suite for p in problems if p.plus is not None})
        self.summaries = summarize(scored, settings.ks, settings.confidence)
        completions = self.plan.by_task(problems)
        references = {p.task_id: p.canonical_solution for p in problems if p.canonical_solution is not None}
        with_bleu = settings.bleu and (settings.json_report is not None or settings.html_report is not None)
        self.analysis = analyse(self.summaries, scored, self.plan.extras, completions, references, with_bleu)
        self.gates = judge(self.summaries, list(settings.minimums), self.baseline, list(settings.max_drops),
                           settings.require_significant)
        add_junit_properties(self.config, self.summaries, self.gates)
        if settings.json_report is None and settings.html_report is None:
            return
        run = self.run_description() | {"problems_sha256": problems_hash(problems)}
        document = report_document(self.summaries, self.records, run, self.analysis, self.gates, self.plan.extras,
                                   completions)
        from .report.html import write_html

        for kind, path, write in (("JSON", settings.json_report, write_json), ("HTML", settings.html_report, write_html)):
            if path is None:
                continue
            try:
                write(path, document)
            except OSError as exc:  # checked at the start, so rare: a full disk, a folder removed meanwhile
                self.report_errors.append(f"passk: could not write the {kind} report {path}: {exc.strerror or exc}")
        if self.report_errors:
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR

    def run_description(self) -> dict[str, Any]:
        """What the JSON report records to reproduce and compare the run."""
        settings = self.settings
        if settings.model is not None:
            source = "model"
        else:
            source = str(settings.completions) if settings.completions else "reference solutions"
        run: dict[str, Any] = {
            "plugin_version": __version__,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "source": source,
            "timeout": settings.limits.timeout,
            "memory": settings.limits.memory,
            "ks": list(settings.ks),
            "deduplicate": settings.deduplicate,
        }
        if self.isolation is not None:
            run["isolation"] = {"mode": self.isolation.mode, "layers": self.isolation.layers,
                                "description": self.isolation.description}
        if settings.model is not None and self.generation is not None:
            generation = self.generation
            run["model"] = {"id": settings.model.model, "revision": settings.model.revision, **generation.model_identity}
            run["sampling"] = dataclasses.asdict(settings.sampling)
            run["generation"] = {
                "generated": generation.generated,
                "weights_loaded": generation.weights_loaded,
                "cached": generation.cached,
                "tokens": generation.tokens,
                "seconds": round(generation.seconds, 3),
                **({"replicas": generation.replicas} if generation.replicas else {}),
            }
            run["timing"] = self.clock.breakdown(generation)
        return run

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> Any:
        """After everything else but the final counts, so that pass@k and the gates end the log a
        CI system shows. Unless asked for (``-v``, ``-rA``, ``--tb``), the failing samples are
        kept out of pytest's failure sections and short summary while they are written (their
        count in the final line stays) and summed up one line per problem instead."""
        failed = terminalreporter.stats.get("failed", [])
        hidden = [] if per_sample_output(config) else [report for report in failed if is_sample_report(report)]
        if hidden:
            terminalreporter.stats["failed"] = [report for report in failed if not is_sample_report(report)]
        try:
            result = yield
        finally:
            if hidden:
                terminalreporter.stats["failed"] = failed
        if hidden:
            write_failures_by_problem(terminalreporter, self.records)
        if self.generation is not None and self.clock.finish is not None:
            terminalreporter.write_line(timing_line(self.clock.breakdown(self.generation)))
        write_summary(terminalreporter, self.summaries, self.analysis.paper, self.gates, self.harness_errors,
                      self.report_errors)
        return result


CONTROLLER_KEY = pytest.StashKey[Controller]()


class GateExitStatus:
    """With gates, the gates decide the exit status, not the samples: models never solve everything."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        controller = self.controller
        if session.exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) or controller.harness_errors:
            return  # interrupted, a usage error, or the harness failed: pytest's own status says so
        passed = controller.summaries and controller.gates.passed
        session.exitstatus = pytest.ExitCode.OK if passed else GATE_FAILED


def local_test_processes(config: pytest.Config) -> int:
    """The processes on this machine that run samples: xdist's workers here (``-n``,
    ``--tx 4*popen``, a socket on the loopback), or this one without xdist."""
    specs = getattr(config.option, "tx", None) or []
    if getattr(config.option, "dist", "no") == "no" or not specs:
        return 1
    return processes_by_host(specs)[LOCAL]


class XdistController:
    """The controller's hooks that exist only with pytest-xdist."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self._problem_files: dict[str, bytes] | None = None
        self._host_processes: Counter[str] | None = None  # workers a machine runs, by host_of
        # A model run's channels to the workers, on which each gets the samples once drawn.
        self.deliveries: list[Any] = []

    def problem_files(self) -> dict[str, bytes]:
        """The problem files this run reaches, by path under the rootdir, for workers on
        other hosts; read once, however many workers are started."""
        if self._problem_files is None:
            rootpath = self.controller.config.rootpath
            self._problem_files = {}
            for path in self.controller.problem_paths:
                try:
                    self._problem_files[path.relative_to(rootpath).as_posix()] = path.read_bytes()
                except ValueError:
                    continue  # outside the rootdir: its node ids could not match there anyway
        return self._problem_files

    def pytest_xdist_setupnodes(self, config: pytest.Config, specs: Any) -> None:
        """With xdist the samples are decided here, after pytest's header and before any worker starts."""
        self.controller.assign()

    def pytest_configure_node(self, node: Any) -> None:
        assignment = self.controller.assignment
        spec = node.gateway.spec
        if not spec.popen or spec.chdir:  # another host, or another directory: the problems travel too (no rsync)
            assignment = dataclasses.replace(assignment, problem_files=self.problem_files())
        workerinput = node.workerinput[WORKERINPUT_KEY] = assignment.to_workerinput()
        # Its share of its own machine's CPUs: the workers there, not in the run.
        if self._host_processes is None:
            self._host_processes = processes_by_host(self.controller.config.option.tx)
        workerinput["host_processes"] = self._host_processes[host_of(spec)]
        if assignment.dist == DEALING_SCHEDULE:  # the worker's problems' records come back on this
            results = node.gateway.newchannel()
            self.controller.config.stash.setdefault(BATCH_CHANNELS, {})[node] = WorkerChannel(results)
            workerinput["results"] = results
        if not self.controller.sampled:  # execnet carries a channel inside a message, to any host
            delivery = node.gateway.newchannel()
            self.deliveries.append(delivery)
            workerinput["delivery"] = delivery

    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """A model run samples here: the first worker's collection is pytest's selection
        (every worker selects the same items, xdist checks), before any sample is scheduled."""
        controller = self.controller
        if controller.sampled:
            return
        controller.sample_selected(controller.selected_problems(ids))
        assignment = controller.assignment
        assert assignment.plan is not None
        samples = {"plan": assignment.plan.to_plain(), "known": known_to_plain(assignment.known)}
        for delivery in self.deliveries:
            delivery.send(samples)
        self.deliveries.clear()

    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport, sched: Any) -> None:
        """A worker died (the samples are confined, so not by a sample's doing):
        an error of the harness, not a model failure. xdist starts a new worker,
        and the scheduler hands the dead worker's unfinished samples, this one
        included, to the workers left, so no verdict is lost."""
        worker = getattr(getattr(report, "node", None), "gateway", None)
        name = getattr(worker, "id", "a worker")
        report.when = "setup"  # reported as an error
        report.longrepr = f"harness error: {name} died while running {crashitem}; its samples run again on another worker"

    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        if config.getoption("dist") != "load":
            return None
        from .scheduling import ProblemScheduling

        return ProblemScheduling(config, log)

