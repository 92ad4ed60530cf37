"""The Codex paper's temperature study: for each suite and k, the temperature at which
pass@k is highest (the paper's figure 5: about 0.2 for pass@1, 0.8 for pass@100), with
that pass@k and its interval."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from ..sources.sampling import temperature_label
from .summary import SuiteSummary

__all__ = ["BestTemperature", "best_temperatures", "figure_for"]


@dataclass(frozen=True)
class BestTemperature:
    temperature: float
    value: float
    interval: list[float] | None  # [low, high], where the run computes intervals


def best_temperatures(summaries: list[SuiteSummary]) -> dict[str, dict[str, BestTemperature]]:
    """Per suite of a study, per metric measured at every temperature of the suite, the best
    temperature; ties go to the lower temperature."""
    by_suite: dict[str, list[SuiteSummary]] = defaultdict(list)
    for summary in summaries:
        if summary.in_study and summary.temperature is not None:
            by_suite[summary.name].append(summary)
    best: dict[str, dict[str, BestTemperature]] = {}
    for suite, figures in by_suite.items():
        figures.sort(key=lambda s: s.temperature or 0.0)
        metrics = [m for m in figures[0].pass_at_k if all(m in s.pass_at_k for s in figures)]
        best[suite] = {}
        for metric in metrics:
            top = max(figures, key=lambda s: s.pass_at_k[metric])  # the first, lowest temperature, on a tie
            assert top.temperature is not None
            best[suite][metric] = BestTemperature(top.temperature, top.pass_at_k[metric], top.intervals.get(metric))
    return best


def figure_for(summaries: list[SuiteSummary], suite: str, metric: str,
               temperature: float | None) -> tuple[SuiteSummary | None, str]:
    """The summary a gate on ``suite`` and ``metric`` reads: the one at ``temperature`` if
    named, else in a study the one at the best temperature for ``metric``; and how the gate
    line names it (empty outside a study). None when there is no such figure."""
    figures = [s for s in summaries if s.name == suite]
    if temperature is not None:
        named = next((s for s in figures if s.temperature == temperature), None)
        return named, f" at {temperature_label(temperature)}"
    if not any(s.in_study for s in figures):
        return (figures[0] if figures else None), ""
    best = best_temperatures(figures).get(suite, {}).get(metric)
    if best is None:
        return None, " at the best temperature"
    chosen = next(s for s in figures if s.temperature == best.temperature)
    return chosen, f" at the best temperature ({temperature_label(best.temperature)})"
