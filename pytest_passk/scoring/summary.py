"""Aggregate sample records into per-suite pass@k figures, with intervals over problems;
in a temperature study, one figure per suite and temperature."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable

from .confidence import bootstrap_interval
from .estimator import pass_at_k
from ..sources.sampling import temperature_label
from ..verdicts import SampleRecord, Verdict

__all__ = ["ProblemResult", "SuiteSummary", "summarize", "task_order"]


@dataclass
class ProblemResult:
    task_id: str
    n: int
    c: int
    pass_at_k: dict[str, float]


@dataclass
class SuiteSummary:
    name: str
    problems: int
    n_min: int
    n_max: int
    pass_at_k: dict[str, float]
    verdicts: dict[str, int]  # every verdict, in the order of Verdict, with its count
    per_problem: list[ProblemResult] = field(default_factory=list)
    # metric -> [low, high]: a bootstrap interval over problems at ``confidence_level``
    intervals: dict[str, list[float]] = field(default_factory=dict)
    confidence_level: float | None = None
    # The temperature its samples were drawn at, where they share a known one; in_study:
    # the run sampled several, and this is one of the suite's figures, one per temperature.
    temperature: float | None = None
    in_study: bool = False

    @property
    def samples_label(self) -> str:
        return str(self.n_min) if self.n_min == self.n_max else f"{self.n_min}-{self.n_max}"

    @property
    def label(self) -> str:
        """How the reports name this figure: the suite, and in a study its temperature."""
        if not self.in_study or self.temperature is None:
            return self.name
        return f"{self.name} at {temperature_label(self.temperature)}"

    def covers(self, record: SampleRecord) -> bool:
        return record.suite == self.name and (not self.in_study or record.temperature == self.temperature)


def summarize(records: Iterable[SampleRecord], ks: Iterable[int], confidence: float | None = 0.95) -> list[SuiteSummary]:
    """pass@k per suite, averaged over its problems, for each ``k`` no problem has fewer samples
    than, with a bootstrap interval over problems at level ``confidence`` (None: none). When
    the samples were drawn at more than one temperature, per suite and temperature."""
    records = list(records)
    study = len({record.temperature for record in records}) > 1
    by_suite: dict[tuple[str, float | None], dict[str, list[SampleRecord]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        by_suite[(record.suite, record.temperature if study else None)][record.task_id].append(record)
    ks = sorted(set(ks))
    summaries = []
    for group in sorted(by_suite, key=lambda group: (group[0], -1.0 if group[1] is None else group[1])):
        suite, temperature = group
        problems = by_suite[group]
        counts = {
            tid: (sum(r.counted for r in rs), sum(r.passed for r in rs))
            for tid, rs in problems.items()
        }
        counts = {tid: nc for tid, nc in counts.items() if nc[0] > 0}  # harness errors only: nothing to count
        if not counts:
            continue
        n_min = min(n for n, _ in counts.values())
        usable = [k for k in ks if k <= n_min]
        per_problem = [
            ProblemResult(tid, n, c, {f"pass@{k}": pass_at_k(n, c, k) for k in usable})
            for tid, (n, c) in sorted(counts.items(), key=lambda item: task_order(item[0]))
        ]
        means = {
            f"pass@{k}": sum(p.pass_at_k[f"pass@{k}"] for p in per_problem) / len(per_problem) for k in usable
        }
        verdicts = Counter(r.verdict for rs in problems.values() for r in rs)
        if not study:  # one temperature: named where the samples all share a known one
            shared = {r.temperature for rs in problems.values() for r in rs}
            temperature = shared.pop() if len(shared) == 1 else None
        intervals = {}
        if confidence is not None:
            for k in usable:
                low, high = bootstrap_interval([p.pass_at_k[f"pass@{k}"] for p in per_problem], confidence)
                intervals[f"pass@{k}"] = [low, high]
        summaries.append(
            SuiteSummary(
                name=suite,
                problems=len(problems),
                n_min=n_min,
                n_max=max(n for n, _ in counts.values()),
                pass_at_k=means,
                verdicts={v.value: verdicts.get(v, 0) for v in Verdict},
                per_problem=per_problem,
                intervals=intervals,
                confidence_level=confidence,
                temperature=temperature,
                in_study=study,
            )
        )
    return summaries


def task_order(task_id: str) -> tuple[str, int, str]:
    """HumanEval/2 before HumanEval/10."""
    head, _, tail = task_id.rpartition("/")
    return (head, int(tail), "") if tail.isdigit() else (task_id, -1, task_id)
