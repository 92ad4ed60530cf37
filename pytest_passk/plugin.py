"""pytest-passk's hooks: options, the controller's set-up, collection, reporting."""

from __future__ import annotations

import codecs
import dataclasses
import datetime
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest

from . import __version__
from .collect import ProblemFile, SampleItem
from .completions import CompletionsFileError, SamplePlan, read_completions
from .executor import Limits, probe_isolation
from .journal import VerdictJournal
from .protocol import run_sample_protocol
from .generation import ModelOptions
from .problems import Problem, ProblemFileError, discover_problem_files, is_problem_file, load_problem_file
from .sampling import CODEX_STOP_SEQUENCES, ModelLoadError, SamplingParams
from .state import (
    KNOWN_VERDICTS_KEY,
    RUN_ORDER_KEY,
    PLAN_KEY,
    RESULTS_KEY,
    RUNNER_KEY,
    SAMPLES_PATH_KEY,
    SETTINGS_KEY,
    Results,
    RunOrder,
    Settings,
    sample_runner,
)
from .gates import GATE_FAILED, Baseline, GateError, Threshold, check_minimums, compare_with_baseline, parse_threshold
from .metrics import bleu_scores, bleu_separation, oracle_pass, ranked_pass_at_1, unique_fraction
from .report import Analysis, problems_hash, report_document, write_json
from .summary import HARNESS_ERROR, SampleRecord, format_summary, summarize

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
    option("--passk-no-dedup", ini_type="bool", action="store_true", default=None,
           help="Execute every sample, also byte-identical completions of the same problem "
           "(by default those run once and share the verdict)")
    option("--passk-json", metavar="PATH", ini_type=None, help="Write the summary and every sample's verdict as JSON")
    option("--passk-isolation", metavar="MODE",
           help="How samples are confined: auto (every layer that works here), strict (refuse to run unless all "
           "work), basic (resource limits and a process group only, as OpenAI's evaluator). Default: auto")
    option("--passk-resume", ini_type=None, action="store_true", default=False,
           help="Reuse the verdicts an interrupted run with the same inputs recorded; execute only the rest")
    option("--passk-suspicious-passes", ini_type="bool", action="store_true", default=None,
           help="Count samples whose results are their own classes overriding comparison as passed, "
           "as OpenAI's evaluator does (by default they get the verdict suspicious)")
    add_gate_options(group, option)
    add_model_options(group, option)
    option(
        "--passk-env",
        metavar="NAME",
        ini_type=None,
        action="append",
        default=[],
        help="Pass this environment variable through to samples (repeatable); they get PATH, LANG, LC_ALL, TZ only",
    )


def add_gate_options(group: Any, option: Any) -> None:
    option("--passk-min", metavar="[SUITE:]pass@K=VALUE", ini_type="linelist", action="append", default=None,
           help="Gate: fail the run (exit status 8) when the measured value is below, e.g. pass@1=0.30 (repeatable)")
    option("--passk-baseline", metavar="REPORT.json",
           help="Compare with the JSON report of an earlier run: per pass@k, and the problems that got worse or better")
    option("--passk-max-drop", metavar="[SUITE:]pass@K=POINTS", ini_type="linelist", action="append", default=None,
           help="Gate: fail when pass@K fell by more than this against --passk-baseline, e.g. pass@1=0.02 (repeatable)")
    option("--passk-require-significant", ini_type="bool", action="store_true", default=None,
           help="Only a drop that a paired permutation test over problems finds significant (p < 0.05) fails the gate")
    option("--passk-ci", metavar="LEVEL",
           help="Confidence level of the bootstrap intervals over problems, or off. Default: 0.95")
    option("--passk-html", metavar="PATH", ini_type=None, help="Write a self-contained HTML report")
    option("--passk-no-bleu", ini_type="bool", action="store_true", default=None,
           help="Leave BLEU out of the reports (it costs about 0.4 ms a sample, on the controller)")


def add_model_options(group: Any, option: Any) -> None:
    group.addoption("--model", dest="passk_model", metavar="ID_OR_PATH",
                    help="Sample completions from this transformers model (hub id or local directory), "
                    "or from openai:NAME served at --passk-base-url")
    group.addoption("--samples", dest="passk_samples", metavar="N", type=int, default=None,
                    help="Samples per problem with --model. Default: 1")
    option("--passk-revision", ini_type=None, metavar="REV", help="Model revision (branch, tag or commit)")
    option("--passk-dtype", metavar="DTYPE", help="auto (bf16 on a GPU that has it, else fp32), float32, bfloat16, float16. Default: auto")
    option("--passk-device", metavar="DEVICE", help="auto (cuda if available, across all GPUs), cpu, cuda, cuda:1. Default: auto")
    option("--passk-trust-remote-code", ini_type="bool", action="store_true", default=None,
           help="Allow the model's own code from its repository to run")
    option("--passk-temperature", metavar="T", help="Sampling temperature; 0 is greedy. Default: 0.8 with --samples > 1, else greedy")
    option("--passk-top-p", metavar="P", help="Nucleus sampling. Default: 0.95")
    option("--passk-max-new-tokens", metavar="N", help="Default: 512")
    option("--passk-seed", metavar="SEED", help="Seed for sampling: the same command gives the same samples. Default: 0")
    option("--passk-stop", metavar="TEXT", ini_type="linelist", action="append", default=None,
           help="Stop sequence, with escapes like \\n (repeatable; replaces the default). "
           "Default: the Codex paper's \\nclass \\ndef \\n# \\nif \\nprint")
    option("--passk-batch-size", metavar="N", help="Sequences per generation batch. Default: 256 on GPU (halved while out of memory), 64 on CPU")
    option("--passk-cache-dir", metavar="DIR", help="Where generated samples are cached. Default: .passk under the rootdir")
    option("--passk-regenerate", ini_type=None, action="store_true", default=False,
           help="Ignore cached samples and generate afresh")
    option("--passk-save-completions", ini_type=None, metavar="PATH",
           help="Also write the generated samples in the completions format")
    option("--passk-base-url", metavar="URL",
           help="With --model openai:NAME, the OpenAI-compatible server's address, e.g. http://host:8000/v1")
    option("--passk-api-key-env", metavar="VARIABLE",
           help="The environment variable holding the server's API key (never given on the command line). "
           "Default: OPENAI_API_KEY")
    option("--passk-concurrency", metavar="N", help="Requests in flight to a served model. Default: 8")
    option("--passk-chat", ini_type="bool", action="store_true", default=None,
           help="Wrap prompts in the tokenizer's chat template; the completion is the code in the reply")


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
    model = config.getoption("passk_model")
    samples = config.getoption("passk_samples")
    if samples is not None and not model:
        raise pytest.UsageError("--samples needs --model (a completions file has its own samples)")
    if model and completions:
        raise pytest.UsageError("--model and --passk-completions exclude each other")
    cache_dir = _setting(config, "passk_cache_dir")
    save = config.getoption("passk_save_completions")
    return Settings(
        model=read_model_options(config, model) if model else None,
        sampling=read_sampling(config, samples or 1),
        cache_dir=Path(cache_dir).expanduser().resolve() if cache_dir else config.rootpath / ".passk",
        regenerate=bool(config.getoption("passk_regenerate")),
        save_completions=Path(save).expanduser().resolve() if save else None,
        limits=Limits(timeout=timeout, memory=parse_memory(_setting(config, "passk_memory") or "4GiB")),
        ks=parse_ks(_setting(config, "passk_k") or DEFAULT_KS),
        completions=Path(completions).expanduser().resolve() if completions else None,
        json_report=Path(json_report).expanduser().resolve() if json_report else None,
        env_passthrough=tuple(config.getoption("passk_env") or ()),
        deduplicate=not _flag(config, "passk_no_dedup"),
        isolation=read_isolation(config),
        resume=bool(config.getoption("passk_resume")),
        suspicious_passes=_flag(config, "passk_suspicious_passes"),
        **read_gates(config),
    )


def read_gates(config: pytest.Config) -> dict[str, Any]:
    def thresholds(name: str) -> tuple[Threshold, ...]:
        values = config.getoption(name) or config.getini(name) or []
        return tuple(parse_threshold(value, "--" + name.replace("_", "-")) for value in values)

    try:
        minimums, max_drops = thresholds("passk_min"), thresholds("passk_max_drop")
    except GateError as exc:
        raise pytest.UsageError(str(exc)) from None
    baseline = _setting(config, "passk_baseline")
    if max_drops and not baseline:
        raise pytest.UsageError("--passk-max-drop needs --passk-baseline (the report of the run to compare with)")
    level_text = str(_setting(config, "passk_ci") or "0.95")
    confidence: float | None = None
    if level_text.lower() not in ("off", "none", "0", "no"):
        try:
            confidence = float(level_text.rstrip("%")) / (100.0 if level_text.endswith("%") else 1.0)
        except ValueError:
            confidence = -1.0
        if not 0.0 < confidence < 1.0:
            raise pytest.UsageError(f"--passk-ci: expected a level such as 0.95 (or off), got {level_text!r}")
    html = config.getoption("passk_html")
    return {
        "minimums": minimums,
        "max_drops": max_drops,
        "baseline": Path(baseline).expanduser().resolve() if baseline else None,
        "require_significant": _flag(config, "passk_require_significant"),
        "confidence": confidence,
        "html_report": Path(html).expanduser().resolve() if html else None,
        "bleu": not _flag(config, "passk_no_bleu"),
    }


def read_isolation(config: pytest.Config) -> str:
    from .isolation import MODES

    mode = _setting(config, "passk_isolation") or "auto"
    if mode not in MODES:
        raise pytest.UsageError(f"--passk-isolation: expected one of {', '.join(MODES)}, got {mode!r}")
    return str(mode)


def _number(config: pytest.Config, name: str, kind: type, default: Any) -> Any:
    text = _setting(config, name)
    if text is None:
        return default
    try:
        return kind(text)
    except ValueError:
        flag = "--" + name.replace("_", "-")
        raise pytest.UsageError(f"{flag}: expected a number, got {text!r}") from None


def _flag(config: pytest.Config, name: str) -> bool:
    value = config.getoption(name)
    return bool(config.getini(name)) if value is None else bool(value)


def read_model_options(config: pytest.Config, model: str) -> ModelOptions:
    return ModelOptions(
        model=model,
        revision=config.getoption("passk_revision"),
        dtype=_setting(config, "passk_dtype") or "auto",
        device=_setting(config, "passk_device") or "auto",
        trust_remote_code=_flag(config, "passk_trust_remote_code"),
        batch_size=_number(config, "passk_batch_size", int, None),
        base_url=_setting(config, "passk_base_url"),
        api_key_env=_setting(config, "passk_api_key_env") or "OPENAI_API_KEY",
        concurrency=_number(config, "passk_concurrency", int, 8),
    )


def read_sampling(config: pytest.Config, samples: int) -> SamplingParams:
    if samples < 1:
        raise pytest.UsageError("--samples must be at least 1")
    stop_values = config.getoption("passk_stop") or config.getini("passk_stop") or None
    stop = (
        tuple(codecs.decode(s, "unicode_escape") for s in stop_values) if stop_values else CODEX_STOP_SEQUENCES
    )
    return SamplingParams(
        samples=samples,
        temperature=_number(config, "passk_temperature", float, 0.8 if samples > 1 else 0.0),
        top_p=_number(config, "passk_top_p", float, 0.95),
        max_new_tokens=_number(config, "passk_max_new_tokens", int, 512),
        seed=_number(config, "passk_seed", int, 0),
        stop=stop,
        chat=_flag(config, "passk_chat"),
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[SETTINGS_KEY] = read_settings(config)
    config.stash[RESULTS_KEY] = Results()
    if not is_worker(config):
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
    from .generation import sample_problems

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
        settings.save_completions.parent.mkdir(parents=True, exist_ok=True)
        settings.save_completions.write_bytes(report.samples_file.read_bytes())


def reachable_problems(config: pytest.Config) -> list[Problem]:
    """The problems this run reaches; broken files are left to collection to report."""
    problems: list[Problem] = []
    for path in discover_problem_files(config.args, config.rootpath):
        try:
            problems.extend(load_problem_file(path))
        except ProblemFileError:
            continue
    return problems


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
    if settings.json_report is not None:
        write_json(settings.json_report, document)
    if settings.html_report is not None:
        from .html_report import write_html

        write_html(settings.html_report, document)


def plan_completions(plan: SamplePlan, problems: list[Problem]) -> dict[str, list[str | None]]:
    """Every problem's sample texts (the reference solution for a self-check)."""
    if not plan.reference:
        return plan.samples
    return {p.task_id: [p.canonical_solution] for p in problems if p.canonical_solution is not None}


def analyse(results: Results, settings: Settings, plan: SamplePlan, problems: list[Problem],
            completions: dict[str, list[str | None]], with_bleu: bool) -> Analysis:
    """The paper's metrics per suite, BLEU where a report wants it, and the gates."""
    analysis = Analysis()
    for summary in results.summaries:
        records = [r for r in results.records if r.suite == summary.name]
        tasks = {r.task_id for r in records}
        paper = {
            "pass@1_mean_logprob": ranked_pass_at_1(records, plan.extras, "mean_logprob"),
            "pass@1_sum_logprob": ranked_pass_at_1(records, plan.extras, "sum_logprob"),
            "oracle_pass@n": oracle_pass(records),
            "unique_fraction": unique_fraction({t: texts for t, texts in completions.items() if t in tasks}),
        }
        analysis.paper[summary.name] = {key: value for key, value in paper.items() if value is not None}
    if with_bleu:
        references = {p.task_id: p.canonical_solution for p in problems if p.canonical_solution is not None}
        analysis.bleu = bleu_scores(completions, references)
        for summary in results.summaries:
            records = [r for r in results.records if r.suite == summary.name]
            analysis.bleu_separation[summary.name] = bleu_separation(records, analysis.bleu)
    analysis.gates = check_minimums(results.summaries, list(settings.minimums))
    if results.baseline is not None:
        drops, analysis.comparisons = compare_with_baseline(results.summaries, results.baseline,
                                                            list(settings.max_drops), settings.require_significant)
        analysis.gates += drops
    return analysis


def add_junit_properties(config: pytest.Config, results: Results) -> None:
    """pass@k figures (and gates) as properties of the suite in ``--junitxml``, for CI systems to show."""
    junit = next((p for p in config.pluginmanager.get_plugins() if type(p).__name__ == "LogXML"
                  and hasattr(p, "add_global_property")), None)
    if junit is None:
        return
    for summary in results.summaries:
        for metric, value in summary.pass_at_k.items():
            junit.add_global_property(f"passk:{summary.name}:{metric}", f"{value:.6f}")
            if metric in summary.intervals:
                low, high = summary.intervals[metric]
                junit.add_global_property(f"passk:{summary.name}:{metric}:interval", f"{low:.6f} {high:.6f}")
    for gate in results.analysis.gates:
        junit.add_global_property("passk:gate", gate.line)


class GateExitStatus:
    """With gates, the gates decide the exit status, not the samples: models never solve everything."""

    def __init__(self, results: Results) -> None:
        self.results = results

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        results = self.results
        if session.exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) or results.harness_errors:
            return  # interrupted, a usage error, or the harness failed: pytest's own status says so
        failed = not results.summaries or any(not gate.passed for gate in results.analysis.gates)
        session.exitstatus = GATE_FAILED if failed else pytest.ExitCode.OK


def run_description(settings: Settings, results: Results) -> dict[str, Any]:
    """What the JSON report records to reproduce and compare the run."""
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
    if results.isolation is not None:
        run["isolation"] = {"mode": results.isolation.mode, "layers": results.isolation.layers,
                            "description": results.isolation.description}
    if settings.model is not None and results.generation is not None:
        generation = results.generation
        run["model"] = {"id": settings.model.model, "revision": settings.model.revision, **generation.model_identity}
        run["sampling"] = dataclasses.asdict(settings.sampling)
        run["generation"] = {
            "generated": generation.generated,
            "cached": generation.cached,
            "tokens": generation.tokens,
            "seconds": round(generation.seconds, 3),
        }
    return run


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


def write_summary(terminalreporter: Any, results: Results) -> None:
    if not results.summaries:
        return
    terminalreporter.write_sep("=", "pass@k")
    for line in format_summary(results.summaries, results.analysis.paper):
        terminalreporter.write_line(line)
    for comparison in results.analysis.comparisons:
        for key in ("worse", "better"):
            changed = comparison.get(key, [])
            if changed:
                listed = ", ".join(f"{c['task_id']} ({c['change'] * 100:+.0f})" for c in changed[:8])
                terminalreporter.write_line(f"    vs baseline, {len(changed)} problems {key} by {comparison['changes_by']}: "
                                            f"{listed}{', ...' if len(changed) > 8 else ''}")
    if results.analysis.gates:
        terminalreporter.write_sep("=", "gates")
        for gate in results.analysis.gates:
            terminalreporter.write_line(gate.line, green=gate.passed, red=not gate.passed)
        if results.harness_errors:
            terminalreporter.write_line(f"{results.harness_errors} harness errors: the gates can't be trusted", red=True)


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
