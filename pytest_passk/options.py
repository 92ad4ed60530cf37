"""Command-line and ini options, and the run's :class:`Settings` read from them."""

from __future__ import annotations

import codecs
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .gates import GateError, Threshold, parse_threshold
from .plus.check import PlusTiming
from .sandbox.runner import Limits
from .sources.generation import ModelOptions
from .sources.sampling import CODEX_STOP_SEQUENCES, SamplingParams

__all__ = ["OPTION_GROUPS", "SETTINGS_KEY", "Settings", "add_options", "read_settings", "check_output_paths"]

DEFAULT_KS = "1,10,100"
MEMORY_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


@dataclass(frozen=True)
class Settings:
    """The options of one run, resolved from the command line and the ini file."""

    limits: Limits
    ks: tuple[int, ...]
    completions: Path | None
    json_report: Path | None
    env_passthrough: tuple[str, ...]
    deduplicate: bool = True
    model: ModelOptions | None = None
    sampling: SamplingParams = field(default_factory=SamplingParams)
    cache_dir: Path = Path(".passk")
    regenerate: bool = False
    save_completions: Path | None = None
    isolation: str = "auto"
    resume: bool = False
    suspicious_passes: bool = False
    minimums: tuple[Threshold, ...] = ()
    baseline: Path | None = None
    max_drops: tuple[Threshold, ...] = ()
    require_significant: bool = False
    confidence: float | None = 0.95
    html_report: Path | None = None
    bleu: bool = True
    plus_timing: PlusTiming = field(default_factory=PlusTiming)

    @property
    def gated(self) -> bool:
        return bool(self.minimums or self.max_drops)


SETTINGS_KEY = pytest.StashKey[Settings]()

# The option groups of ``pytest --help``, in the order of the pipeline.
OPTION_GROUPS = {
    "passk-problems": "pass@k: problems and completions",
    "passk-model": "pass@k: model sampling (--model)",
    "passk-served": "pass@k: served models (--model openai:NAME)",
    "passk-execution": "pass@k: execution and sandbox",
    "passk-reports": "pass@k: reports",
    "passk-gates": "pass@k: gates",
}


def add_options(parser: pytest.Parser) -> None:
    """The option groups, and the ini twins of what a team would pin (the CLI wins)."""
    groups = {name: parser.getgroup(name, description) for name, description in OPTION_GROUPS.items()}

    def option(group: str, name: str, ini_type: str | None = "string", **kwargs: Any) -> None:
        dest = name.lstrip("-").replace("-", "_")
        groups[group].addoption(name, dest=dest, **kwargs)
        if ini_type is not None:
            parser.addini(dest, help=kwargs["help"].split(". Default")[0], type=ini_type)  # type: ignore[arg-type]

    def flag(group: str, name: str, help: str, ini_type: str | None = "bool") -> None:
        option(group, name, ini_type=ini_type, action="store_true", default=None if ini_type else False,
               help=help + ". Default: off")

    option("passk-problems", "--passk-completions", metavar="FILE",
           help="JSONL of {task_id, completion} samples to evaluate (OpenAI's samples format). "
           "Default: each problem's reference solution")

    groups["passk-model"].addoption(
        "--model", dest="passk_model", metavar="ID_OR_PATH",
        help="Sample completions from this transformers model (hub id or local directory), "
        "or from openai:NAME served at --passk-base-url. Default: none")
    groups["passk-model"].addoption("--samples", dest="passk_samples", metavar="N", type=int, default=None,
                                    help="Samples per problem with --model. Default: 1")
    option("passk-model", "--passk-revision", ini_type=None, metavar="REV",
           help="Model revision (branch, tag or commit). Default: the hub's main")
    option("passk-model", "--passk-dtype", metavar="DTYPE",
           help="auto (bf16 on a GPU that has it, else fp32), float32, bfloat16, float16. Default: auto")
    option("passk-model", "--passk-device", metavar="DEVICE",
           help="auto (cuda if available; with several GPUs one replica each, or the model sharded over them "
           "where it does not fit one), cpu, cuda, cuda:1, or a list for one replica each (cuda:0,cuda:1). Default: auto")
    flag("passk-model", "--passk-trust-remote-code", "Allow the model's own code from its repository to run")
    option("passk-model", "--passk-temperature", metavar="T[,T,...]",
           help="Sampling temperature, 0 for greedy; several (0.2,0.6,0.8) sample each and report pass@k per "
           "temperature and the best temperature for each k. Default: 0.8 with --samples > 1, else greedy")
    option("passk-model", "--passk-top-p", metavar="P", help="Nucleus sampling. Default: 0.95")
    option("passk-model", "--passk-max-new-tokens", metavar="N",
           help="Most tokens generated per sample; a prompt and these must fit the model's context. Default: 512")
    option("passk-model", "--passk-seed", metavar="SEED",
           help="Seed for sampling: the same command gives the same samples. Default: 0")
    option("passk-model", "--passk-stop", metavar="TEXT", ini_type="linelist", action="append", default=None,
           help="Stop sequence, with escapes like \\n (repeatable; replaces the default). "
           "Default: the Codex paper's \\nclass \\ndef \\n# \\nif \\nprint")
    option("passk-model", "--passk-batch-size", metavar="N",
           help="Sequences per generation batch. Default: 256 on GPU, 64 on CPU (halved while out of memory)")
    flag("passk-model", "--passk-chat",
         "Wrap prompts in the tokenizer's chat template; the completion is the code in the reply")
    option("passk-model", "--passk-cache-dir", metavar="DIR",
           help="Where generated samples and the verdict journal are kept. Default: .passk under the rootdir")
    flag("passk-model", "--passk-regenerate", "Ignore cached samples and generate afresh", ini_type=None)
    option("passk-model", "--passk-save-completions", ini_type=None, metavar="PATH",
           help="Also write the generated samples in the completions format. Default: none")

    option("passk-served", "--passk-base-url", metavar="URL",
           help="The OpenAI-compatible server's address, e.g. http://host:8000/v1. Default: none")
    option("passk-served", "--passk-api-key-env", metavar="VARIABLE",
           help="The environment variable holding the server's API key (never given on the command line). "
           "Default: OPENAI_API_KEY")
    option("passk-served", "--passk-concurrency", metavar="N", help="Requests in flight to a served model. Default: 8")

    option("passk-execution", "--passk-timeout", metavar="SECONDS", help="Wall-clock limit per sample. Default: 3.0")
    option("passk-execution", "--passk-memory", metavar="SIZE",
           help="Address-space limit per sample, e.g. 4GiB, 512M, 0 for none. Default: 4GiB")
    option("passk-execution", "--passk-isolation", metavar="MODE",
           help="How samples are confined: auto (every layer that works here), strict (refuse to run unless all "
           "work), basic (resource limits and a process group only, as OpenAI's evaluator). Default: auto")
    option("passk-execution", "--passk-env", metavar="NAME", ini_type=None, action="append", default=[],
           help="Pass this environment variable through to samples (repeatable). "
           "Default: PATH, LANG, LC_ALL, TZ only")
    flag("passk-execution", "--passk-no-dedup",
         "Execute every sample, also byte-identical completions of the same problem "
         "(by default those run once and share the verdict)")
    flag("passk-execution", "--passk-resume",
         "Reuse the verdicts an interrupted run with the same inputs recorded; execute only the rest", ini_type=None)
    option("passk-execution", "--passk-plus-min-time", metavar="SECONDS",
           help="HumanEval+: the least time limit of an input (EvalPlus's min_time_limit). Default: 4.0")
    option("passk-execution", "--passk-plus-time-factor", metavar="FACTOR",
           help="HumanEval+: an input's time limit in multiples of the reference's time on it "
           "(EvalPlus's gt_time_limit_factor). Default: 4.0")
    flag("passk-execution", "--passk-plus-details",
         "HumanEval+: run every input of a failing sample and count the failures (by default a sample "
         "stops at its first failing input, as EvalPlus does)")
    flag("passk-execution", "--passk-suspicious-passes",
         "Count samples whose results are their own classes overriding comparison as passed, "
         "as OpenAI's evaluator does (by default they get the verdict suspicious)")

    option("passk-reports", "--passk-k", metavar="K,K,...", help=f"The k of pass@k to report. Default: {DEFAULT_KS}")
    option("passk-reports", "--passk-ci", metavar="LEVEL",
           help="Confidence level of the bootstrap intervals over problems, or off. Default: 0.95")
    option("passk-reports", "--passk-json", metavar="PATH", ini_type=None,
           help="Write the summary and every sample's verdict as JSON. Default: none")
    option("passk-reports", "--passk-html", metavar="PATH", ini_type=None,
           help="Write a self-contained HTML report. Default: none")
    flag("passk-reports", "--passk-no-bleu",
         "Leave BLEU out of the reports (it costs about 0.4 ms a sample, on the controller)")

    option("passk-gates", "--passk-min", metavar="[SUITE:]pass@K=VALUE", ini_type="linelist", action="append",
           default=None, help="Fail the run (exit status 8) when the measured value is below, e.g. pass@1=0.30 "
           "(repeatable). Default: none")
    option("passk-gates", "--passk-baseline", metavar="REPORT.json",
           help="Compare with the JSON report of an earlier run: per pass@k, and the problems that got worse "
           "or better. Default: none")
    option("passk-gates", "--passk-max-drop", metavar="[SUITE:]pass@K=POINTS", ini_type="linelist",
           action="append", default=None,
           help="Fail when pass@K fell by more than this against --passk-baseline, e.g. pass@1=0.02 (repeatable). "
           "Default: none")
    flag("passk-gates", "--passk-require-significant",
         "Only a drop that a paired permutation test over problems finds significant (p < 0.05) fails the gate")


def _setting(config: pytest.Config, name: str) -> Any:
    """The CLI value if given, else the ini value, else None."""
    value = config.getoption(name)
    if value is None:
        value = config.getini(name) or None
    return value


def check_output_path(option: str, path: Path) -> None:
    """A report path that can't be written fails now, not after the whole run."""
    if path.is_dir():
        raise pytest.UsageError(f"{option} {path}: is a directory (give a file path)")
    if not path.parent.is_dir():
        raise pytest.UsageError(f"{option} {path}: folder {path.parent} does not exist")
    if not os.access(path if path.exists() else path.parent, os.W_OK):
        raise pytest.UsageError(f"{option} {path}: not writable")


def check_output_paths(config: pytest.Config, settings: Settings) -> None:
    """Every report path of the run, checked before anything runs (the controller's job)."""
    junitxml = config.getoption("xmlpath", None)
    for option, path in (("--passk-json", settings.json_report), ("--passk-html", settings.html_report),
                         ("--passk-save-completions", settings.save_completions),
                         ("--junitxml", Path(junitxml).expanduser().resolve() if junitxml else None)):
        if path is not None:
            check_output_path(option, path)


def parse_memory(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", text.lower())
    if not match:
        raise pytest.UsageError(f"--passk-memory: cannot read {text!r} (use e.g. 4GiB, 512M, 0 for no limit)")
    return int(float(match.group(1)) * MEMORY_UNITS[match.group(2)])


def comma_separated(text: str, kind: type) -> tuple[Any, ...]:
    """``1, 10,100`` -> (1, 10, 100): distinct, ascending; ValueError for a value ``kind`` can't read."""
    return tuple(sorted({kind(value) for value in text.replace(" ", "").split(",") if value}))


def parse_ks(text: str) -> tuple[int, ...]:
    try:
        ks = comma_separated(text, int)
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
        plus_timing=read_plus_timing(config),
        **read_gates(config),
    )


def read_plus_timing(config: pytest.Config) -> PlusTiming:
    timing = PlusTiming(_number(config, "passk_plus_min_time", float, 4.0),
                        _number(config, "passk_plus_time_factor", float, 4.0), _flag(config, "passk_plus_details"))
    if timing.min_time_limit <= 0 or timing.factor <= 0:
        raise pytest.UsageError("--passk-plus-min-time and --passk-plus-time-factor must be positive")
    return timing


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
    from .sandbox.isolation import MODES

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


def parse_temperatures(text: str | None, default: float) -> tuple[float, ...]:
    """``0.2,0.6,0.8`` -> (0.2, 0.6, 0.8): distinct, ascending."""
    if text is None:
        return (default,)
    try:
        temperatures = comma_separated(str(text), float)
    except ValueError:
        raise pytest.UsageError(f"--passk-temperature: expected a number or comma-separated numbers, got {text!r}") from None
    if not temperatures or temperatures[0] < 0 or not all(math.isfinite(t) for t in temperatures):
        raise pytest.UsageError(f"--passk-temperature: each temperature must be a number >= 0, got {text!r}")
    return temperatures


def read_sampling(config: pytest.Config, samples: int) -> SamplingParams:
    if samples < 1:
        raise pytest.UsageError("--samples must be at least 1")
    stop_values = config.getoption("passk_stop") or config.getini("passk_stop") or None
    stop = (
        tuple(codecs.decode(s, "unicode_escape") for s in stop_values) if stop_values else CODEX_STOP_SEQUENCES
    )
    temperatures = parse_temperatures(_setting(config, "passk_temperature"), 0.8 if samples > 1 else 0.0)
    return SamplingParams(
        samples=samples,
        temperature=temperatures[0],
        study=temperatures if len(temperatures) > 1 else (),
        top_p=_number(config, "passk_top_p", float, 0.95),
        max_new_tokens=_number(config, "passk_max_new_tokens", int, 512),
        seed=_number(config, "passk_seed", int, 0),
        stop=stop,
        chat=_flag(config, "passk_chat"),
    )
