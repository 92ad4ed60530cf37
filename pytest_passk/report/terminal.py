"""The terminal's share of a run: header lines, and the pass@k summary that ends the log."""

from __future__ import annotations

from typing import Any

from ..gates import GateVerdicts
from ..sandbox.runner import IsolationReport
from ..scoring.summary import SuiteSummary
from ..sources.generation import GenerationReport

__all__ = ["header_lines", "format_summary", "write_summary"]

PAPER_METRICS = (("pass@1_mean_logprob", "pass@1 by mean log-p"), ("pass@1_sum_logprob", "pass@1 by sum log-p"),
                 ("oracle_pass@n", "oracle pass@n"))
COMPARISONS_LISTED = 8  # problems named per line of the baseline comparison


def header_lines(isolation: IsolationReport | None, resumed: int, generation: GenerationReport | None) -> list[str]:
    lines = []
    if isolation is not None:
        lines.append(f"passk isolation: {isolation.description}")
    if resumed:
        lines.append(f"passk: resuming, {resumed} verdicts recorded by an earlier run")
    if generation is not None:
        rate = generation.tokens / generation.seconds if generation.seconds > 0 else 0.0
        lines.append(
            f"passk: {generation.generated} samples generated, {generation.cached} from the cache"
            + (f", {generation.tokens} tokens in {generation.seconds:.1f} s ({rate:.0f} tok/s)" if generation.generated else "")
            + ("; the model's weights were not loaded" if generation.weights_loaded is False else "")
        )
    return lines


def format_summary(summaries: list[SuiteSummary], paper: dict[str, dict[str, float]] | None = None) -> list[str]:
    lines = []
    for s in summaries:
        figures = "  ".join(f"{name} = {value * 100:.2f}%{_interval(s, name)}" for name, value in s.pass_at_k.items())
        lines.append(f"{s.name}: {s.problems} problems, n = {s.samples_label} samples each: {figures}")
        counted = ", ".join(f"{count} {verdict}" for verdict, count in s.verdicts.items() if count)
        lines.append(f"    verdicts: {counted}")
        metrics = (paper or {}).get(s.name, {})
        shown = [f"{label} = {metrics[key] * 100:.2f}%" for key, label in PAPER_METRICS if key in metrics]
        if "unique_fraction" in metrics:
            shown.append(f"unique completions = {metrics['unique_fraction'] * 100:.1f}%")
        if shown:
            lines.append("    " + ", ".join(shown))
    return lines


def _interval(summary: SuiteSummary, metric: str) -> str:
    if metric not in summary.intervals:
        return ""
    low, high = summary.intervals[metric]
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
                    terminalreporter.write_line(f"    vs baseline, {len(changed)} problems {key} by "
                                                f"{comparison['changes_by']}: {listed}{more}")
        if gates.outcomes:
            terminalreporter.write_sep("=", "gates")
            for gate in gates.outcomes:
                terminalreporter.write_line(gate.line, green=gate.passed, red=not gate.passed)
            if harness_errors:
                terminalreporter.write_line(f"{harness_errors} harness errors: the gates can't be trusted", red=True)
    for error in report_errors:
        terminalreporter.write_line(error, red=True)
