"""pytest-passk's hooks: the controller's set-up, collection, running samples, the end of the run."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from .arguments import reconsider_rootdir
from .items import ProblemFile, SampleItem
from .sources.completions import CompletionsFileError, SamplePlan, read_completions
from .conclusion import (
    GateExitStatus,
    add_junit_properties,
    analyse,
    plan_completions,
    run_description,
    write_summary,
)
from .sandbox.runner import probe_isolation
from .gates import Baseline, GateError
from .sandbox.journal import HARNESS_ERROR, VerdictJournal
from .options import add_options, check_output_paths, read_settings
from .problems import (
    Problem,
    ProblemFileError,
    discover_problem_files,
    is_problem_file,
    load_problem_file,
)
from .protocol import run_sample_protocol
from .report.document import problems_hash, report_document, write_json
from .sources.sampling import ModelLoadError
from .state import (
    KNOWN_VERDICTS_KEY,
    PLAN_KEY,
    REACHABLE_PROBLEMS_KEY,
    REMOTE_PROBLEM_FILES_KEY,
    RESULTS_KEY,
    RUN_ORDER_KEY,
    RUNNER_KEY,
    SAMPLES_PATH_KEY,
    SETTINGS_KEY,
    Results,
    RunOrder,
    Settings,
    sample_runner,
)
from .scoring.summary import SampleRecord, summarize


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    """``--passk-completions FILE`` must root the run where ``--passk-completions=FILE`` does."""
    reconsider_rootdir(early_config, parser, args)


def pytest_configure(config: pytest.Config) -> None:
    config.stash[SETTINGS_KEY] = read_settings(config)
    config.stash[RESULTS_KEY] = Results()
    if not is_worker(config):
        check_output_paths(config, config.stash[SETTINGS_KEY])
        config.pluginmanager.register(VerdictCollector(config.stash[RESULTS_KEY]), "passk-verdicts")
        if config.stash[SETTINGS_KEY].gated:
            config.pluginmanager.register(GateExitStatus(config.stash[RESULTS_KEY]), "passk-gates")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(), "passk-xdist")


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Decide the samples once, on the controller, before xdist starts any worker
    (xdist spawns them in its own trylast sessionstart)."""
    config = session.config
    if is_worker(config):
        workerinput = config.workerinput  # type: ignore[attr-defined]
        place_problem_files(config.rootpath, workerinput.get("passk_problem_files", {}))
        samples = workerinput["passk_samples"]
        config.stash[PLAN_KEY] = plan_from_bytes(samples["name"], samples["data"]) if samples else SamplePlan(reference=True)
        config.stash[KNOWN_VERDICTS_KEY] = {key: tuple(value) for key, value in workerinput["passk_known"].items()}
        return
    settings = config.stash[SETTINGS_KEY]
    if settings.baseline is not None:
        try:
            config.stash[RESULTS_KEY].baseline = Baseline.read(settings.baseline)
        except GateError as exc:
            raise pytest.UsageError(str(exc)) from None
    prepare_execution(config, settings)
    if settings.model is not None:
        generate_samples(config, settings)
        return
    if settings.completions is None:
        config.stash[PLAN_KEY] = SamplePlan(reference=True)
        config.stash[SAMPLES_PATH_KEY] = ""
        return
    try:
        plan = read_completions(settings.completions, known_task_ids(config) or None)
    except CompletionsFileError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[PLAN_KEY] = plan
    config.stash[SAMPLES_PATH_KEY] = str(settings.completions)


def place_problem_files(rootpath: Path, files: dict[str, bytes]) -> None:
    """On a worker on another host: write the problem files the controller sent where
    collection finds them, at the same paths under the rootdir, so that node ids match."""
    for relative, data in files.items():
        target = rootpath / relative
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)


def problem_files_for_remote(config: pytest.Config) -> dict[str, bytes]:
    """The problem files this run reaches, by path under the rootdir, for workers on other
    hosts; read once, however many workers are started."""
    if REMOTE_PROBLEM_FILES_KEY not in config.stash:
        files = {}
        for path in discover_problem_files(config.args, config.rootpath):
            try:
                files[path.relative_to(config.rootpath).as_posix()] = path.read_bytes()
            except ValueError:
                continue  # outside the rootdir: its node ids could not match there anyway
        config.stash[REMOTE_PROBLEM_FILES_KEY] = files
    return config.stash[REMOTE_PROBLEM_FILES_KEY]


def plan_from_bytes(name: str, data: bytes) -> SamplePlan:
    """A worker's samples, as the controller sent them: the worker may run on another host."""
    with tempfile.TemporaryDirectory(prefix="passk-samples-") as directory:
        path = Path(directory) / name
        path.write_bytes(data)
        return read_completions(path)


def prepare_execution(config: pytest.Config, settings: Settings) -> None:
    """Find out which isolation samples will get (refusing a strict run without it),
    and open the verdict journal, reading it back when resuming."""
    results = config.stash[RESULTS_KEY]
    if not discover_problem_files(config.args, config.rootpath):
        return  # a test run that reaches no problem: nothing to isolate or record
    try:
        results.isolation = probe_isolation(settings.isolation, settings.limits.memory)
    except OSError as exc:
        raise pytest.UsageError(f"passk: cannot start the sample runner: {exc}") from None
    if settings.isolation == "strict" and results.isolation.missing:
        missing = ", ".join(f"{layer} ({why})" for layer, why in results.isolation.missing.items())
        raise pytest.UsageError(f"passk: --passk-isolation=strict, but not available here: {missing}")
    try:
        results.journal = VerdictJournal(settings.cache_dir / "verdicts.jsonl", resume=settings.resume)
    except OSError as exc:
        raise pytest.UsageError(f"passk: cannot write the verdict journal in {settings.cache_dir}: {exc}") from None
    config.stash[KNOWN_VERDICTS_KEY] = dict(results.journal.known)


def generate_samples(config: pytest.Config, settings: Settings) -> None:
    """Sample every problem this run reaches from the model, once, here on the controller."""
    assert settings.model is not None
    problems = {p.task_id: p for p in reachable_problems(config)}
    from .sources.generation import sample_problems

    try:
        report = sample_problems(
            list(problems.values()),
            settings.model,
            settings.sampling,
            settings.cache_dir,
            regenerate=settings.regenerate,
            quiet=config.getoption("verbose") < 0,
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
    config.stash[RESULTS_KEY].generation = report
    config.stash[PLAN_KEY] = read_completions(report.samples_file)
    config.stash[SAMPLES_PATH_KEY] = str(report.samples_file)
    if settings.save_completions is not None:
        settings.save_completions.write_bytes(report.samples_file.read_bytes())


def reachable_problems(config: pytest.Config) -> list[Problem]:
    """The problems this run reaches, read once (the controller needs them at the start and
    at the end); broken files are left to collection to report."""
    if REACHABLE_PROBLEMS_KEY not in config.stash:
        problems: list[Problem] = []
        for path in discover_problem_files(config.args, config.rootpath):
            try:
                problems.extend(load_problem_file(path))
            except ProblemFileError:
                continue
        config.stash[REACHABLE_PROBLEMS_KEY] = problems
    return config.stash[REACHABLE_PROBLEMS_KEY]


def known_task_ids(config: pytest.Config) -> set[str]:
    """Task ids of the problems this run reaches; broken files are left to collection to report."""
    return {p.task_id for p in reachable_problems(config)}


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> ProblemFile | None:
    if is_problem_file(file_path):
        return ProblemFile.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Remember which samples this process will run, and in what order, as far as the
    schedule tells: all of them without xdist, the dealt problems' under per-problem
    scheduling, and whole problems wherever the schedule keeps them together."""
    worker = is_worker(config)
    workerinput: dict[str, Any] = getattr(config, "workerinput", {})
    grouped = workerinput.get("passk_grouped", False) if worker else True
    order = RunOrder()
    samples = [item for item in items if isinstance(item, SampleItem) and item.index >= 0]
    if grouped:
        for item in samples:
            order.groups.setdefault(item.group_key, []).append(item)
    if not worker:  # one process runs every item, in this order
        order.items = samples
    elif workerinput.get("passk_dealt", False):  # per-problem scheduling dealt this worker its problems
        from .scheduling import owned_scopes, problem_scope, worker_index

        mine = owned_scopes((item.nodeid for item in items), worker_index(workerinput["workerid"]),
                            int(workerinput["workercount"]))
        order.items = [item for item in samples if problem_scope(item.nodeid) in mine]
    order.position = {item.nodeid: i for i, item in enumerate(order.items)}
    config.stash[RUN_ORDER_KEY] = order


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    if isinstance(item, SampleItem):
        if item.index >= 0:
            # Queue what comes next: it runs in the fork server while pytest reports this item.
            runner = sample_runner(item.config)
            for upcoming in item.config.stash[RUN_ORDER_KEY].upcoming(item, nextitem):
                upcoming.submit(runner)
        run_sample_protocol(item, nextitem)
        return True
    return None


class VerdictCollector:
    """Gathers each sample's verdict from its call report (from any worker) into the results."""

    def __init__(self, results: Results) -> None:
        self.results = results

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            if report.failed:  # a setup or teardown error, or a worker that died
                self.results.harness_errors += 1
            return
        for name, value in report.user_properties:
            if name == "passk":
                record = SampleRecord.from_properties(value)  # type: ignore[arg-type]
                self.results.records.append(record)
                self.results.harness_errors += record.verdict == HARNESS_ERROR
                if self.results.journal is not None:
                    self.results.journal.record(value["key"], record.verdict, record.message, record.seconds)  # type: ignore[index]

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:  # a broken problem file
            self.results.harness_errors += 1


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Conclude the run before other plugins finish theirs (junitxml writes its file then)."""
    config = session.config
    if RUNNER_KEY in config.stash:
        config.stash[RUNNER_KEY].close()
        del config.stash[RUNNER_KEY]
    if is_worker(config):
        return
    results = config.stash[RESULTS_KEY]
    settings = config.stash[SETTINGS_KEY]
    if results.journal is not None:
        results.journal.close()
    if not results.records:
        return
    results.summaries = summarize(results.records, settings.ks, settings.confidence)
    plan = config.stash.get(PLAN_KEY, SamplePlan())
    problems = reachable_problems(config)
    completions = plan_completions(plan, problems)
    results.analysis = analyse(results, settings, plan, problems, completions,
                               with_bleu=settings.bleu and (settings.json_report is not None or settings.html_report is not None))
    add_junit_properties(config, results)
    if settings.json_report is None and settings.html_report is None:
        return
    run = run_description(settings, results) | {"problems_sha256": problems_hash(problems)}
    document = report_document(results.summaries, results.records, run, results.analysis, plan.extras, completions)
    from .report.html import write_html

    for kind, path, write in (("JSON", settings.json_report, write_json), ("HTML", settings.html_report, write_html)):
        if path is None:
            continue
        try:
            write(path, document)
        except OSError as exc:  # checked at the start, so rare: a full disk, a folder removed meanwhile
            results.report_errors.append(f"passk: could not write the {kind} report {path}: {exc.strerror or exc}")
    if results.report_errors:
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    if RESULTS_KEY not in config.stash:
        return None
    results = config.stash[RESULTS_KEY]
    lines = []
    if results.isolation is not None:
        lines.append(f"passk isolation: {results.isolation.description}")
    if results.journal is not None and results.journal.known:
        lines.append(f"passk: resuming, {len(results.journal.known)} verdicts recorded by an earlier run")
    generation = results.generation
    if generation is not None:
        rate = generation.tokens / generation.seconds if generation.seconds > 0 else 0.0
        lines.append(
            f"passk: {generation.generated} samples generated, {generation.cached} from the cache"
            + (f", {generation.tokens} tokens in {generation.seconds:.1f} s ({rate:.0f} tok/s)" if generation.generated else "")
            + ("; the model's weights were not loaded" if generation.weights_loaded is False else "")
        )
    return lines or None


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> Any:
    """After everything else but the final counts (the short summary may list thousands of
    failed samples), so that pass@k and the gates end the log a CI system shows."""
    result = yield
    if not is_worker(config):
        write_summary(terminalreporter, config.stash[RESULTS_KEY])
    return result


class XdistHooks:
    """Hooks that exist only when pytest-xdist is installed."""

    def pytest_configure_node(self, node: Any) -> None:
        config = node.config
        # The samples themselves, not their path: execution workers may run on other hosts (--tx ssh=, socket=).
        samples_path = config.stash.get(SAMPLES_PATH_KEY, "")
        node.workerinput["passk_samples"] = (
            {"name": Path(samples_path).name, "data": Path(samples_path).read_bytes()} if samples_path else {}
        )
        node.workerinput["passk_known"] = {key: list(value) for key, value in config.stash.get(KNOWN_VERDICTS_KEY, {}).items()}
        spec = node.gateway.spec
        if not spec.popen or spec.chdir:  # another host, or another directory: the problems travel too (no rsync)
            node.workerinput["passk_problem_files"] = problem_files_for_remote(config)
        dist = config.getoption("dist")
        node.workerinput["passk_grouped"] = dist in ("load", "loadscope", "loadfile", "each")
        node.workerinput["passk_dealt"] = dist == "load"  # ProblemScheduling, below

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
