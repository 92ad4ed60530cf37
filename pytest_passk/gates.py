"""Release gates for CI: minimum pass@k values, and no larger drop than allowed against a baseline run."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .scoring.confidence import paired_permutation_test
from .scoring.study import figure_for
from .scoring.summary import SuiteSummary

__all__ = ["GATE_FAILED", "SIGNIFICANCE", "Threshold", "GateOutcome", "Baseline", "parse_threshold",
           "check_minimums", "compare_with_baseline", "GateError", "GateVerdicts", "judge"]

# The exit status of a run whose gates failed (pytest's own are 0-5).
GATE_FAILED = 8
SIGNIFICANCE = 0.05  # a drop is significant below this one-sided p-value
METRIC = re.compile(r"pass@([1-9]\d*)")


class GateError(Exception):
    """A gate option or baseline file that can't be used; the message is one line."""


@dataclass(frozen=True)
class Threshold:
    """``[SUITE:]pass@K[@T]=VALUE``: VALUE a fraction (0.30) or a percentage (30%); T a
    temperature of a temperature study (``@T0.8`` or ``@0.8``); without it, a study's gate
    reads pass@K at its best temperature."""

    metric: str
    value: float
    suite: str | None = None
    temperature: float | None = None

    def applies_to(self, suite: str) -> bool:
        return self.suite is None or self.suite == suite


def parse_threshold(text: str, option: str) -> Threshold:
    match = re.fullmatch(r"\s*(?:([^:=\s]+):)?(pass@\d+)(?:@T?([0-9.]+))?\s*=\s*([0-9.]+)\s*(%?)\s*", text)
    if not match or not METRIC.fullmatch(match.group(2)):
        raise GateError(f"{option}: expected [SUITE:]pass@K[@T]=VALUE such as pass@1=0.30 or pass@1@T0.2=30%, "
                        f"got {text!r}")
    try:
        value = float(match.group(4)) / (100.0 if match.group(5) else 1.0)
        temperature = None if match.group(3) is None else float(match.group(3))
    except ValueError:
        raise GateError(f"{option}: {text!r}: not a number") from None
    if not 0.0 <= value <= 1.0:
        raise GateError(f"{option}: {text!r} is outside 0-1 (or 0-100%)")
    return Threshold(match.group(2), value, match.group(1), temperature)


@dataclass(frozen=True)
class GateOutcome:
    passed: bool
    line: str  # the gate, what was measured, PASS or FAIL


def _percent(value: float) -> str:
    return f"{value * 100:.2f}%"


def _suites_for(threshold: Threshold, summaries: list[SuiteSummary]) -> list[str]:
    """The suites a gate applies to, by name (a study has several figures of each), in order."""
    return list(dict.fromkeys(s.name for s in summaries if threshold.applies_to(s.name)))


def check_minimums(summaries: list[SuiteSummary], thresholds: list[Threshold]) -> list[GateOutcome]:
    outcomes = []
    for threshold in thresholds:
        suites = _suites_for(threshold, summaries)
        if not suites:
            outcomes.append(GateOutcome(False, f"{threshold.metric} >= {_percent(threshold.value)} on "
                                               f"{threshold.suite or 'any suite'}: no such suite was run  FAIL"))
        for name in suites:
            figure, where = figure_for(summaries, name, threshold.metric, threshold.temperature)
            gate = f"{threshold.metric} >= {_percent(threshold.value)} on {name}{where}"
            if figure is None:
                outcomes.append(GateOutcome(False, f"{gate}: no samples at that temperature  FAIL"
                                            if threshold.temperature is not None else f"{gate}: not measurable  FAIL"))
                continue
            measured = figure.pass_at_k.get(threshold.metric)
            if measured is None:
                outcomes.append(GateOutcome(False, f"{gate}: not measurable (n = {figure.n_min} samples, fewer than k)  FAIL"))
                continue
            passed = measured >= threshold.value
            outcomes.append(GateOutcome(passed, f"{gate}: measured {_percent(measured)}  {'PASS' if passed else 'FAIL'}"))
    return outcomes


@dataclass
class Baseline:
    """The JSON report of an earlier run: per suite and temperature (None where the report
    names none), per problem, its pass@k values."""

    path: Path
    # (suite, temperature) -> task -> metric -> value
    per_problem: dict[tuple[str, float | None], dict[str, dict[str, float]]] = field(default_factory=dict)

    def figures_for(self, summary: SuiteSummary) -> dict[str, dict[str, float]] | None:
        """The baseline's per-problem values for the same suite at the same temperature; a
        run of one temperature compares with a baseline of one whatever either's temperature."""
        exact = self.per_problem.get((summary.name, summary.temperature))
        if exact is not None:
            return exact
        same_suite = [values for (name, _), values in self.per_problem.items() if name == summary.name]
        return same_suite[0] if not summary.in_study and len(same_suite) == 1 else None

    @classmethod
    def read(cls, path: Path) -> Baseline:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            suites = document["suites"]
            per_problem = {
                (str(suite["name"]), None if suite.get("temperature") is None else float(suite["temperature"])):
                    {str(p["task_id"]): {str(k): float(v) for k, v in p["pass_at_k"].items()}
                     for p in suite["per_problem"]}
                for suite in suites
            }
        except FileNotFoundError:
            raise GateError(f"--passk-baseline: {path}: file not found") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise GateError(f"--passk-baseline: {path}: not a pytest-passk JSON report ({type(exc).__name__}: {exc})") from None
        if not per_problem:
            raise GateError(f"--passk-baseline: {path}: the report has no suites")
        return cls(path, per_problem)


def compare_with_baseline(summaries: list[SuiteSummary], baseline: Baseline, max_drops: list[Threshold],
                          require_significant: bool) -> tuple[list[GateOutcome], list[dict[str, Any]]]:
    """Gate outcomes, and per suite (and temperature, in a study) the comparison the report
    shows: every common pass@k before and after with its p-value, and the problems that got
    worse or better. Samples of a temperature are compared with the baseline's of the same."""
    outcomes: list[GateOutcome] = []
    comparisons: list[dict[str, Any]] = []
    for suite in summaries:
        before = baseline.figures_for(suite)
        if before is None:
            continue
        now = {p.task_id: p.pass_at_k for p in suite.per_problem}
        common = [task for task in now if task in before]
        comparison: dict[str, Any] = {
            "suite": suite.name, "temperature": suite.temperature, "label": suite.label,
            "baseline": str(baseline.path), "common_problems": len(common),
            "only_here": len(now) - len(common), "only_in_baseline": len(before) - len(common), "metrics": {},
        }
        metrics = [m for m in suite.pass_at_k if common and all(m in before[t] and m in now[t] for t in common)]
        for metric in metrics:
            current = [now[t][metric] for t in common]
            previous = [before[t][metric] for t in common]
            comparison["metrics"][metric] = {
                "baseline": sum(previous) / len(previous), "current": sum(current) / len(current),
                "p_value_drop": paired_permutation_test(current, previous),
            }
        if metrics:
            metric = metrics[0]
            changes = sorted(((now[t][metric] - before[t][metric], t) for t in common), key=lambda c: (c[0], c[1]))
            comparison["worse"] = [{"task_id": t, "change": d} for d, t in changes if d < 0]
            comparison["better"] = [{"task_id": t, "change": d} for d, t in reversed(changes) if d > 0]
            comparison["changes_by"] = metric
        comparisons.append(comparison)
    for threshold in max_drops:
        suites = _suites_for(threshold, summaries)
        for name in suites:
            figure, where = figure_for(summaries, name, threshold.metric, threshold.temperature)
            outcomes.append(_drop_gate(threshold, name, where, figure, comparisons, require_significant))
        if not suites:
            outcomes.append(GateOutcome(False, f"{threshold.metric} drop <= {threshold.value * 100:.2f} points on "
                                               f"{threshold.suite}: no such suite was run  FAIL"))
    return outcomes, comparisons


def _drop_gate(threshold: Threshold, suite: str, where: str, figure: SuiteSummary | None,
               comparisons: list[dict[str, Any]], require_significant: bool) -> GateOutcome:
    gate = f"{threshold.metric} drop <= {threshold.value * 100:.2f} points vs baseline on {suite}{where}"
    if figure is None:
        return GateOutcome(False, f"{gate}: not measured in this run  FAIL")
    comparison = next((c for c in comparisons if c["suite"] == suite and c["temperature"] == figure.temperature), None)
    if comparison is None or threshold.metric not in comparison["metrics"]:
        why = "not in the baseline" if comparison is None else "not measurable on the common problems"
        return GateOutcome(False, f"{gate}: {why}  FAIL")
    figures = comparison["metrics"][threshold.metric]
    drop = figures["baseline"] - figures["current"]
    p_value = figures["p_value_drop"]
    too_large = drop > threshold.value + 1e-12
    significant = p_value < SIGNIFICANCE
    passed = not too_large or (require_significant and not significant)
    note = (f"p = {p_value:.3f}" if p_value >= 0.001 else "p < 0.001") + (", not significant" if too_large and not significant else "")
    line = (f"{gate}: {_percent(figures['baseline'])} -> {_percent(figures['current'])} "
            f"({(figures['current'] - figures['baseline']) * 100:+.2f} points, {note}; {comparison['common_problems']} common problems)  "
            f"{'PASS' if passed else 'FAIL'}")
    return GateOutcome(passed, line)


@dataclass
class GateVerdicts:
    """What the gates concluded: each gate's outcome, and the baseline comparison per suite."""

    outcomes: list[GateOutcome] = field(default_factory=list)
    comparisons: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(gate.passed for gate in self.outcomes)


def judge(summaries: list[SuiteSummary], minimums: list[Threshold], baseline: Baseline | None,
          max_drops: list[Threshold], require_significant: bool) -> GateVerdicts:
    """Every gate of the run: the minimums, then the drops against the baseline."""
    verdicts = GateVerdicts(check_minimums(summaries, minimums))
    if baseline is not None:
        drops, verdicts.comparisons = compare_with_baseline(summaries, baseline, max_drops, require_significant)
        verdicts.outcomes += drops
    return verdicts
