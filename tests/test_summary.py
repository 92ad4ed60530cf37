"""From sample records to per-suite pass@k (scoring.summary), checked against values by hand."""

from __future__ import annotations

import pytest

from pytest_passk.scoring.summary import summarize, task_order
from pytest_passk.verdicts import SampleRecord, Verdict


def records(suite: str, task_id: str, verdicts: list[Verdict]) -> list[SampleRecord]:
    return [SampleRecord(suite, task_id, index, verdict, "", 0.0) for index, verdict in enumerate(verdicts)]


P, F, T, E = Verdict.PASSED, Verdict.FAILED, Verdict.TIMEOUT, Verdict.ERROR


def test_pass_at_k_per_suite_by_hand() -> None:
    data = (records("A", "A/10", [P, P, F, F]) + records("A", "A/2", [F, F, F, T])
            + records("B", "B/0", [P, F, F, F, E]))  # the harness error is not a sample of B/0
    by_name = {s.name: s for s in summarize(data, ks=[1, 2, 10], confidence=None)}
    a, b = by_name["A"], by_name["B"]
    # A/10: n = 4, c = 2: pass@1 = 1/2, pass@2 = 1 - C(2,2)/C(4,2) = 5/6; A/2 solves nothing.
    assert a.pass_at_k == pytest.approx({"pass@1": (0.5 + 0) / 2, "pass@2": (5 / 6 + 0) / 2})  # k = 10 > n: left out
    assert [(p.task_id, p.n, p.c) for p in a.per_problem] == [("A/2", 4, 0), ("A/10", 4, 2)]
    assert a.verdicts["passed"] == 2 and a.verdicts["failed"] == 5 and a.verdicts["timeout"] == 1
    assert a.problems == 2 and a.n_min == a.n_max == 4 and a.intervals == {}
    assert (b.n_min, b.per_problem[0].c) == (4, 1) and b.verdicts["error"] == 1
    assert b.pass_at_k == pytest.approx({"pass@1": 0.25, "pass@2": 0.5})


def test_unequal_sample_counts_and_intervals() -> None:
    data = records("A", "A/0", [P] * 3) + records("A", "A/1", [F] * 5)
    (summary,) = summarize(data, ks=[1, 3, 5], confidence=0.9)
    assert (summary.n_min, summary.n_max, summary.samples_label) == (3, 5, "3-5")
    assert list(summary.pass_at_k) == ["pass@1", "pass@3"]  # 5 > the smallest n
    low, high = summary.intervals["pass@1"]
    assert 0.0 <= low <= 0.5 <= high <= 1.0 and summary.confidence_level == 0.9


def test_a_problem_with_only_harness_errors_does_not_count() -> None:
    data = records("A", "A/0", [P, P]) + records("A", "A/1", [E, E])
    (summary,) = summarize(data, ks=[1], confidence=None)
    assert summary.pass_at_k == {"pass@1": 1.0} and [p.task_id for p in summary.per_problem] == ["A/0"]
    assert summarize(records("A", "A/1", [E]), ks=[1]) == []


def test_task_order() -> None:
    assert sorted(["H/10", "H/2", "x", "H/1"], key=task_order) == ["H/1", "H/2", "H/10", "x"]
