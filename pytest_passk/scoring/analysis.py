"""What the run concludes beyond pass@k, per suite: the paper's metrics (see
:mod:`pytest_passk.scoring.metrics`), and BLEU where a report wants it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..verdicts import SampleRecord
from .metrics import bleu_scores, bleu_separation, oracle_pass, ranked_pass_at_1, unique_fraction
from .summary import SuiteSummary

__all__ = ["Analysis", "analyse"]


@dataclass
class Analysis:
    paper: dict[str, dict[str, Any]] = field(default_factory=dict)  # suite -> metric -> value
    bleu: dict[str, list[float | None]] = field(default_factory=dict)  # task -> per sample
    bleu_separation: dict[str, dict[str, Any]] = field(default_factory=dict)  # suite -> separation


def analyse(summaries: list[SuiteSummary], records: list[SampleRecord], extras: dict[str, list[dict[str, Any]]],
            completions: dict[str, list[str | None]], references: dict[str, str], with_bleu: bool) -> Analysis:
    """``extras``: what the model recorded per sample (log-probabilities); ``completions``:
    every problem's sample texts; ``references``: reference solutions, for BLEU."""
    analysis = Analysis()
    if with_bleu:
        analysis.bleu = bleu_scores(completions, references)
    for summary in summaries:
        suite_records = [r for r in records if r.suite == summary.name]
        tasks = {r.task_id for r in suite_records}
        paper = {
            "pass@1_mean_logprob": ranked_pass_at_1(suite_records, extras, "mean_logprob"),
            "pass@1_sum_logprob": ranked_pass_at_1(suite_records, extras, "sum_logprob"),
            "oracle_pass@n": oracle_pass(suite_records),
            "unique_fraction": unique_fraction({t: texts for t, texts in completions.items() if t in tasks}),
        }
        analysis.paper[summary.name] = {key: value for key, value in paper.items() if value is not None}
        if with_bleu:
            analysis.bleu_separation[summary.name] = bleu_separation(suite_records, analysis.bleu)
    return analysis
