"""What the Codex paper reported beside pass@k, computed where the data allows.

* pass@1 of the sample a model ranks first by its mean token log-probability,
  and by the sum (the paper's 44.5% vs 28.8% random pick, for Codex-12B);
* the oracle pass@n: the share of problems any sample solves;
* the share of distinct completions per problem;
* BLEU of each sample against the reference solution, and how well it tells
  passing samples from failing ones (the paper's finding: poorly).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from ..verdicts import SampleRecord

__all__ = ["ranked_pass_at_1", "oracle_pass", "unique_fraction", "bleu_scores", "bleu_separation"]


def _by_problem(records: Iterable[SampleRecord]) -> dict[tuple[str, str], list[SampleRecord]]:
    grouped: dict[tuple[str, str], list[SampleRecord]] = defaultdict(list)
    for record in records:
        if record.counted:
            grouped[(record.suite, record.task_id)].append(record)
    return grouped


def ranked_pass_at_1(records: Iterable[SampleRecord], extras: dict[str, list[dict[str, Any]]], key: str) -> float | None:
    """pass@1 when each problem's sample with the highest ``key`` is the one submitted
    (ties to the lowest index); None unless every sample has ``key``."""
    grouped = _by_problem(records)
    if not grouped:
        return None
    solved = 0
    for (_, task_id), samples in grouped.items():
        recorded = extras.get(task_id, [])
        scores = []
        for record in samples:
            value = recorded[record.index].get(key) if 0 <= record.index < len(recorded) else None
            if not isinstance(value, (int, float)):
                return None
            scores.append((-float(value), record.index, record))
        solved += min(scores, key=lambda s: (s[0], s[1]))[2].passed
    return solved / len(grouped)


def oracle_pass(records: Iterable[SampleRecord]) -> float | None:
    """The share of problems at least one sample solves (pass@n)."""
    grouped = _by_problem(records)
    if not grouped:
        return None
    return sum(any(r.passed for r in samples) for samples in grouped.values()) / len(grouped)


def unique_fraction(samples: dict[str, list[str | None]]) -> float | None:
    """Mean over problems of distinct completions / samples."""
    fractions = [len(set(texts)) / len(texts) for texts in samples.values() if texts]
    return sum(fractions) / len(fractions) if fractions else None


def bleu_scores(samples: dict[str, list[str | None]], references: dict[str, str]) -> dict[str, list[float | None]]:
    """Sentence BLEU (sacrebleu, 0-100) of each sample against its problem's reference solution."""
    from sacrebleu.metrics.bleu import BLEU

    metric = BLEU(effective_order=True)
    scores: dict[str, list[float | None]] = {}
    for task_id, texts in samples.items():
        reference = references.get(task_id)
        if reference is None:
            continue
        seen: dict[str | None, float | None] = {}  # identical completions score the same
        row = []
        for text in texts:
            if text not in seen:
                seen[text] = None if text is None else round(metric.sentence_score(text, [reference]).score, 4)
            row.append(seen[text])
        scores[task_id] = row
    return scores


def _summary(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    return {"n": len(values), "mean": statistics.fmean(values), "median": statistics.median(values),
            "min": min(values), "max": max(values)}


def bleu_separation(records: Iterable[SampleRecord], scores: dict[str, list[float | None]]) -> dict[str, Any]:
    """Per problem, the BLEU of passing and of failing samples; overall, the chance that
    a passing sample outscores a failing one of the same problem (0.5 is a coin toss)."""
    per_problem: dict[str, dict[str, Any]] = {}
    passed_all: list[float] = []
    failed_all: list[float] = []
    aucs = []
    for (_, task_id), samples in sorted(_by_problem(records).items()):
        row = scores.get(task_id)
        if row is None:
            continue
        passed = [row[r.index] for r in samples if r.passed and r.index < len(row) and row[r.index] is not None]
        failed = [row[r.index] for r in samples if not r.passed and r.index < len(row) and row[r.index] is not None]
        passed_values = [float(v) for v in passed if v is not None]
        failed_values = [float(v) for v in failed if v is not None]
        per_problem[task_id] = {"passed": _summary(passed_values), "failed": _summary(failed_values)}
        passed_all += passed_values
        failed_all += failed_values
        if passed_values and failed_values:
            wins = sum((p > f) + 0.5 * (p == f) for p in passed_values for f in failed_values)
            aucs.append(wins / (len(passed_values) * len(failed_values)))
    return {
        "passed": _summary(passed_all),
        "failed": _summary(failed_all),
        "separation_auc": statistics.fmean(aucs) if aucs else None,
        "problems_with_both": len(aucs),
        "per_problem": per_problem,
    }
