"""The terminal's share of a run: header lines, and the pass@k summary that ends the log."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Iterable

import pytest

from ..cpus import describe_cpus
from ..gates import GateVerdicts
from ..sandbox.runner import IsolationReport
from ..scoring.study import BestTemperature, best_temperatures
from ..scoring.summary import SuiteSummary, task_order
from ..sources.sampling import temperature_label
from ..sources.generation import GenerationReport
from ..verdicts import SampleRecord, Verdict

__all__ = ["header_lines", "resume_line", "generation_line", "format_summary", "write_summary", "per_sample_output", "is_sample_report",
           "failures_by_problem", "write_failures_by_problem"]

PAPER_METRICS = (("pass@1_mean_logprob", "pass@1 by mean log-p"), ("pass@1_sum_logprob", "pass@1 by sum log-p"),
                 ("oracle_pass@n", "oracle pass@n"))
COMPARISONS_LISTED = 8  # problems named per line of the baseline comparison


def header_lines(isolation: IsolationReport | None, local_processes: int) -> list[str]:
    """Where samples run (``isolation`` None: none do): the sandbox's layers, and the CPUs
    they run on here (not where every test process is on another host)."""
    if isolation is None:
        return []
    lines = [f"passk isolation: {isolation.description}"]
    if local_processes:
        lines.append(f"passk cpus: {describe_cpus(local_processes)}")
    return lines


def resume_line(resumed: int) -> str:
    return f"passk: resuming, {resumed} verdicts recorded by an earlier run"


def generation_line(generation: GenerationReport) -> str:
    rate = generation.tokens / generation.seconds if generation.seconds > 0 else 0.0
    return (f"passk: {generation.generated} samples generated, {generation.cached} from the cache"
            + (f", {generation.tokens} tokens in {generation.seconds:.1f} s ({rate:.0f} tok/s)" if generation.generated else "")
            + ("; the model's weights were not loaded" if generation.weights_loaded is False else ""))


def per_sample_output(config: pytest.Config) -> bool:
    """Whether the user asked for each failing sample's section and short-summary line
    (``-v``, ``-rA``, ``--tb=...``); by default a run of thousands of samples reads
    like a summary: one line per problem with failures."""
    return (config.getoption("verbose") > 0 or "A" in (config.getoption("reportchars") or "")
            or config.getoption("tbstyle", "auto") != "auto")


def is_sample_report(report: Any) -> bool:
    return any(name == "passk" for name, _ in getattr(report, "user_properties", ()))


def failures_by_problem(records: Iterable[SampleRecord], width: int = 240) -> list[str]:
    """One line per problem with samples that did not pass: how many, by verdict, and the
    most common message, whole up to ``width`` characters, whatever the terminal's width (the
    message is the point; every message stays in the JSON and HTML reports)."""
    samples: Counter[tuple[str, str]] = Counter()
    verdicts: dict[tuple[str, str], Counter[Verdict]] = defaultdict(Counter)
    messages: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for record in records:
        key = (record.suite, record.task_id)
        samples[key] += 1
        if record.verdict is not Verdict.PASSED and record.counted:
            verdicts[key][record.verdict] += 1
            messages[key][record.message] += 1
    lines = []
    for key in sorted(verdicts, key=lambda key: (key[0], task_order(key[1]))):
        counted = ", ".join(f"{count} {verdict}" for verdict, count in verdicts[key].most_common())
        message, times = messages[key].most_common(1)[0]
        line = f"{key[1]}: {sum(verdicts[key].values())} of {samples[key]} did not pass ({counted}); " \
               f"most often ({times}x): {message}"
        lines.append(line if len(line) <= width else line[: width - 3] + "...")
    return lines


def write_failures_by_problem(terminalreporter: Any, records: list[SampleRecord]) -> None:
    lines = failures_by_problem(records)
    if lines:
        terminalreporter.write_sep("=", "samples that did not pass, by problem (-v or -rA: each sample)")
        for line in lines:
            terminalreporter.write_line(line)


def format_summary(summaries: list[SuiteSummary], paper: dict[str, dict[str, float]] | None = None) -> list[str]:
    """Per suite (and temperature, in a study) its pass@k, verdicts and the paper's metrics;
    after a study's figures of a suite, the best temperature for each k."""
    lines = []
    best = best_temperatures(summaries)
    for position, s in enumerate(summaries):
        figures = "  ".join(f"{name} = {value * 100:.2f}%{_interval(s, s.intervals.get(name))}"
                            for name, value in s.pass_at_k.items())
        lines.append(f"{s.label}: {s.problems} problems, n = {s.samples_label} samples each: {figures}")
        counted = ", ".join(f"{count} {verdict}" for verdict, count in s.verdicts.items() if count)
        lines.append(f"    verdicts: {counted}")
        metrics = (paper or {}).get(s.label, {})
        shown = [f"{label} = {metrics[key] * 100:.2f}%" for key, label in PAPER_METRICS if key in metrics]
        if "unique_fraction" in metrics:
            shown.append(f"unique completions = {metrics['unique_fraction'] * 100:.1f}%")
        if shown:
            lines.append("    " + ", ".join(shown))
        last_of_suite = position + 1 == len(summaries) or summaries[position + 1].name != s.name
        if last_of_suite and best.get(s.name):
            lines.append(best_temperature_line(s, best[s.name]))
    return lines


def best_temperature_line(summary: SuiteSummary, best: dict[str, BestTemperature]) -> str:
    figures = "  ".join(f"{metric} = {b.value * 100:.2f}% at {temperature_label(b.temperature)}"
                        f"{_interval(summary, b.interval)}" for metric, b in best.items())
    return f"{summary.name}, best temperature for each k: {figures}"


def _interval(summary: SuiteSummary, interval: list[float] | None) -> str:
    if interval is None:
        return ""
    low, high = interval
    level = f"{summary.confidence_level * 100:g}% CI " if summary.confidence_level else ""
    return f" [{level}{low * 100:.1f}-{high * 100:.1f}]"


def write_summary(terminalreporter: Any, summaries: list[SuiteSummary], paper: dict[str, dict[str, Any]],
                  gates: GateVerdicts, harness_errors: int, report_errors: list[str]) -> None:
    """pass@k per suite, the baseline comparison, the gates, and reports that could not be written."""
    if summaries:
        terminalreporter.write_sep("=", "pass@k")
        for line in format_summary(summaries, paper):
            terminalreporter.write_line(line)
        for comparison in gates.comparisons:
            for key in ("worse", "better"):
                changed = comparison.get(key, [])
                if changed:
                    listed = ", ".join(f"{c['task_id']} ({c['change'] * 100:+.0f})" for c in changed[:COMPARISONS_LISTED])
                    more = ", ..." if len(changed) > COMPARISONS_LISTED else ""
                    where = f" at {temperature_label(comparison['temperature'])}" \
                        if comparison["label"] != comparison["suite"] else ""
                    terminalreporter.write_line(f"    vs baseline{where}, {len(changed)} problems {key} by "
                                                f"{comparison['changes_by']}: {listed}{more}")
        if gates.outcomes:
            terminalreporter.write_sep("=", "gates")
            for gate in gates.outcomes:
                terminalreporter.write_line(gate.line, green=gate.passed, red=not gate.passed)
            if harness_errors:
                terminalreporter.write_line(f"{harness_errors} harness errors: the gates can't be trusted", red=True)
    for error in report_errors:
        terminalreporter.write_line(error, red=True)
