"""What the controller concludes when the samples are in: the paper's metrics, gates,
junitxml properties, the run's description, the summary at the end of the log."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest

from . import __version__
from .sources.completions import SamplePlan
from .gates import GATE_FAILED, check_minimums, compare_with_baseline
from .scoring.metrics import (
    bleu_scores,
    bleu_separation,
    oracle_pass,
    ranked_pass_at_1,
    unique_fraction,
)
from .problems import Problem
from .report.document import Analysis
from .state import Results, Settings
from .scoring.summary import format_summary

__all__ = ["plan_completions", "analyse", "add_junit_properties", "GateExitStatus", "run_description", "write_summary"]


def plan_completions(plan: SamplePlan, problems: list[Problem]) -> dict[str, list[str | None]]:
    """Every problem's sample texts (the reference solution for a self-check)."""
    if not plan.reference:
        return plan.samples
    return {p.task_id: [p.canonical_solution] for p in problems if p.canonical_solution is not None}


def analyse(results: Results, settings: Settings, plan: SamplePlan, problems: list[Problem],
            completions: dict[str, list[str | None]], with_bleu: bool) -> Analysis:
    """The paper's metrics per suite, BLEU where a report wants it, and the gates."""
    analysis = Analysis()
    if with_bleu:
        references = {p.task_id: p.canonical_solution for p in problems if p.canonical_solution is not None}
        analysis.bleu = bleu_scores(completions, references)
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
            "weights_loaded": generation.weights_loaded,
            "cached": generation.cached,
            "tokens": generation.tokens,
            "seconds": round(generation.seconds, 3),
        }
    return run


def write_summary(terminalreporter: Any, results: Results) -> None:
    if results.summaries:
        write_pass_at_k(terminalreporter, results)
    for error in results.report_errors:
        terminalreporter.write_line(error, red=True)


def write_pass_at_k(terminalreporter: Any, results: Results) -> None:
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
