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
    # By the summary's label (the suite, and in a temperature study its temperature):
    paper: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> metric -> value
    bleu: dict[str, list[float | None]] = field(default_factory=dict)  # task -> per sample
    bleu_separation: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> separation


def analyse(summaries: list[SuiteSummary], records: list[SampleRecord], extras: dict[str, list[dict[str, Any]]],
            completions: dict[str, list[str | None]], references: dict[str, str], with_bleu: bool) -> Analysis:
    """``extras``: what the model recorded per sample (log-probabilities); ``completions``:
    every problem's sample texts; ``references``: reference solutions, for BLEU."""
    analysis = Analysis()
    if with_bleu:
        analysis.bleu = bleu_scores(completions, references)
    for summary in summaries:
        suite_records = [r for r in records if summary.covers(r)]
        texts: dict[str, list[str | None]] = {}  # the summary's own samples' texts (one temperature's, in a study)
        for record in suite_records:
            task_texts = completions.get(record.task_id, [])
            if 0 <= record.index < len(task_texts):
                texts.setdefault(record.task_id, []).append(task_texts[record.index])
        paper = {
            "pass@1_mean_logprob": ranked_pass_at_1(suite_records, extras, "mean_logprob"),
            "pass@1_sum_logprob": ranked_pass_at_1(suite_records, extras, "sum_logprob"),
            "oracle_pass@n": oracle_pass(suite_records),
            "unique_fraction": unique_fraction(texts),
        }
        analysis.paper[summary.label] = {key: value for key, value in paper.items() if value is not None}
        if with_bleu:
            analysis.bleu_separation[summary.label] = bleu_separation(suite_records, analysis.bleu)
    return analysis
