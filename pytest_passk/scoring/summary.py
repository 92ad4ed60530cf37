"""Aggregate sample verdicts into per-suite pass@k figures, for the terminal and JSON."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

from .confidence import bootstrap_interval
from .estimator import pass_at_k
from ..sandbox.journal import HARNESS_ERROR  # the harness's fault, not the sample's: left out of pass@k

__all__ = ["SampleRecord", "SuiteSummary", "summarize", "format_summary", "task_order"]

VERDICTS = ("passed", "failed", "timeout", "crashed", "oom", "suspicious", HARNESS_ERROR)


@dataclass(frozen=True)
class SampleRecord:
    """One evaluated sample, as a worker reported it."""

    suite: str
    task_id: str
    index: int
    verdict: str
    message: str
    seconds: float
    shared: bool = False  # the verdict of an identical completion's execution
    resumed: bool = False  # the verdict an interrupted run recorded

    @classmethod
    def from_properties(cls, properties: dict[str, Any]) -> SampleRecord:
        return cls(
            suite=str(properties["suite"]),
            task_id=str(properties["task_id"]),
            index=int(properties["index"]),
            verdict=str(properties["verdict"]),
            message=str(properties["message"]),
            seconds=float(properties["seconds"]),
            shared=bool(properties.get("shared", False)),
            resumed=bool(properties.get("resumed", False)),
        )


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
    verdicts: dict[str, int]
    per_problem: list[ProblemResult] = field(default_factory=list)
    # metric -> [low, high]: a bootstrap interval over problems at ``confidence_level``
    intervals: dict[str, list[float]] = field(default_factory=dict)
    confidence_level: float | None = None

    @property
    def samples_label(self) -> str:
        return str(self.n_min) if self.n_min == self.n_max else f"{self.n_min}-{self.n_max}"


def summarize(records: Iterable[SampleRecord], ks: Iterable[int], confidence: float | None = 0.95) -> list[SuiteSummary]:
    """pass@k per suite, averaged over its problems, for each ``k`` no problem has fewer samples
    than, with a bootstrap interval over problems at level ``confidence`` (None: none)."""
    by_suite: dict[str, dict[str, list[SampleRecord]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        by_suite[record.suite][record.task_id].append(record)
    ks = sorted(set(ks))
    summaries = []
    for suite in sorted(by_suite):
        problems = by_suite[suite]
        counts = {
            tid: (sum(r.verdict != HARNESS_ERROR for r in rs), sum(r.verdict == "passed" for r in rs))
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
                verdicts={v: verdicts.get(v, 0) for v in (*VERDICTS, *sorted(set(verdicts) - set(VERDICTS)))},
                per_problem=per_problem,
                intervals=intervals,
                confidence_level=confidence,
            )
        )
    return summaries


def task_order(task_id: str) -> tuple[str, int, str]:
    """HumanEval/2 before HumanEval/10."""
    head, _, tail = task_id.rpartition("/")
    return (head, int(tail), "") if tail.isdigit() else (task_id, -1, task_id)


PAPER_METRICS = (("pass@1_mean_logprob", "pass@1 by mean log-p"), ("pass@1_sum_logprob", "pass@1 by sum log-p"),
                 ("oracle_pass@n", "oracle pass@n"))


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
