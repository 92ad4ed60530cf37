"""pytest-passk's hooks: options, the controller's set-up, collection, reporting."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from . import __version__
from .collect import ProblemFile, SampleItem
from .completions import CompletionsFileError, SamplePlan, read_completions
from .executor import Limits
from .problems import ProblemFileError, discover_problem_files, is_problem_file, load_problem_file
from .state import (
    GROUPS_KEY,
    PLAN_KEY,
    RESULTS_KEY,
    RUNNER_KEY,
    SAMPLES_PATH_KEY,
    SETTINGS_KEY,
    Results,
    Settings,
)
from .summary import SampleRecord, format_summary, summarize, write_json

DEFAULT_KS = "1,10,100"
MEMORY_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("passk", "functional-correctness evaluation (pass@k)")

    def option(name: str, ini_type: str | None = "string", **kwargs: Any) -> None:
        """A ``--passk-*`` option and, where a team would pin it, its ini twin (the CLI wins)."""
        group.addoption(name, dest=name.lstrip("-").replace("-", "_"), **kwargs)
        if ini_type is not None:
            ini = name.lstrip("-").replace("-", "_")
            parser.addini(ini, help=kwargs["help"].split(". Default")[0], type=ini_type)  # type: ignore[arg-type]

    option(
        "--passk-completions",
        metavar="FILE",
        help="JSONL of {task_id, completion} samples to evaluate (OpenAI's samples format). "
        "Default: each problem's reference solution",
    )
    option("--passk-timeout", metavar="SECONDS", help="Wall-clock limit per sample. Default: 3.0")
    option("--passk-memory", metavar="SIZE", help="Address-space limit per sample, e.g. 4GiB, 512M. Default: 4GiB")
    option("--passk-k", metavar="K,K,...", help=f"The k of pass@k to report. Default: {DEFAULT_KS}")
    option("--passk-json", metavar="PATH", ini_type=None, help="Write the summary and every sample's verdict as JSON")
    option(
        "--passk-env",
        metavar="NAME",
        ini_type=None,
        action="append",
        default=[],
        help="Pass this environment variable through to samples (repeatable); they get PATH, LANG, LC_ALL, TZ only",
    )


def _setting(config: pytest.Config, name: str) -> Any:
    """The CLI value if given, else the ini value, else None."""
    value = config.getoption(name)
    if value is None:
        value = config.getini(name) or None
    return value


def parse_memory(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", text.lower())
    if not match:
        raise pytest.UsageError(f"--passk-memory: cannot read {text!r} (use e.g. 4GiB, 512M, 0 for no limit)")
    return int(float(match.group(1)) * MEMORY_UNITS[match.group(2)])


def parse_ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(sorted({int(k) for k in text.replace(" ", "").split(",") if k}))
    except ValueError:
        raise pytest.UsageError(f"--passk-k: expected comma-separated integers, got {text!r}") from None
    if not ks or ks[0] < 1:
        raise pytest.UsageError(f"--passk-k: each k must be at least 1, got {text!r}")
    return ks


def read_settings(config: pytest.Config) -> Settings:
    timeout_text = _setting(config, "passk_timeout") or "3.0"
    try:
        timeout = float(timeout_text)
    except ValueError:
        raise pytest.UsageError(f"--passk-timeout: expected seconds, got {timeout_text!r}") from None
    if timeout <= 0:
        raise pytest.UsageError("--passk-timeout must be positive")
    completions = _setting(config, "passk_completions")
    json_report = config.getoption("passk_json")
    return Settings(
        limits=Limits(timeout=timeout, memory=parse_memory(_setting(config, "passk_memory") or "4GiB")),
        ks=parse_ks(_setting(config, "passk_k") or DEFAULT_KS),
        completions=Path(completions).expanduser().resolve() if completions else None,
        json_report=Path(json_report).expanduser().resolve() if json_report else None,
        env_passthrough=tuple(config.getoption("passk_env") or ()),
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[SETTINGS_KEY] = read_settings(config)
    config.stash[RESULTS_KEY] = Results()
    if not is_worker(config):
        config.pluginmanager.register(VerdictCollector(config.stash[RESULTS_KEY]), "passk-verdicts")
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
        samples_path = config.workerinput["passk_samples"]  # type: ignore[attr-defined]
        config.stash[PLAN_KEY] = read_completions(Path(samples_path)) if samples_path else SamplePlan(reference=True)
        return
    settings = config.stash[SETTINGS_KEY]
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


def known_task_ids(config: pytest.Config) -> set[str]:
    """Task ids of the problems this run reaches; broken files are left to collection to report."""
    task_ids: set[str] = set()
    for path in discover_problem_files(config.args, config.rootpath):
        try:
            task_ids.update(p.task_id for p in load_problem_file(path))
        except ProblemFileError:
            continue
    return task_ids


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> ProblemFile | None:
    if is_problem_file(file_path):
        return ProblemFile.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Remember which items of a problem this process will run, where the schedule
    guarantees they all run here (no xdist, or xdist with per-problem scheduling)."""
    grouped = config.workerinput.get("passk_grouped", False) if is_worker(config) else True  # type: ignore[attr-defined]
    groups: dict[tuple[str, str], list[SampleItem]] = {}
    if grouped:
        for item in items:
            if isinstance(item, SampleItem) and item.index >= 0:
                groups.setdefault((str(item.path), item.problem.task_id), []).append(item)
    config.stash[GROUPS_KEY] = groups


class VerdictCollector:
    """Gathers each sample's verdict from its call report (from any worker) into the results."""

    def __init__(self, results: Results) -> None:
        self.results = results

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == "passk":
                self.results.records.append(SampleRecord.from_properties(value))  # type: ignore[arg-type]


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if RUNNER_KEY in config.stash:
        config.stash[RUNNER_KEY].close()
        del config.stash[RUNNER_KEY]
    if is_worker(config):
        return
    results = config.stash[RESULTS_KEY]
    settings = config.stash[SETTINGS_KEY]
    results.summaries = summarize(results.records, settings.ks)
    if settings.json_report is not None:
        write_json(
            settings.json_report,
            results.summaries,
            results.records,
            run={
                "plugin_version": __version__,
                "source": str(settings.completions) if settings.completions else "reference solutions",
                "timeout": settings.limits.timeout,
                "memory": settings.limits.memory,
                "ks": list(settings.ks),
            },
        )


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if is_worker(config):
        return
    summaries = config.stash[RESULTS_KEY].summaries
    if not summaries:
        return
    terminalreporter.write_sep("=", "pass@k")
    for line in format_summary(summaries):
        terminalreporter.write_line(line)


class XdistHooks:
    """Hooks that exist only when pytest-xdist is installed."""

    def pytest_configure_node(self, node: Any) -> None:
        config = node.config
        node.workerinput["passk_samples"] = config.stash.get(SAMPLES_PATH_KEY, "")
        node.workerinput["passk_grouped"] = config.getoption("dist") in ("load", "loadscope", "loadfile", "each")

    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        if config.getoption("dist") != "load":
            return None
        from .scheduling import ProblemScheduling

        return ProblemScheduling(config, log)
