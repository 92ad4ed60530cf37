"""Intervals over problems and the paired test behind the baseline gate (scoring.confidence)."""

from __future__ import annotations

from pytest_passk.scoring.confidence import bootstrap_interval, paired_permutation_test


def test_bootstrap_interval_brackets_the_mean_and_narrows_with_more_problems() -> None:
    small = bootstrap_interval([0.0, 1.0] * 10)
    large = bootstrap_interval([0.0, 1.0] * 500)
    assert small[0] < 0.5 < small[1] and large[0] < 0.5 < large[1]
    assert large[1] - large[0] < (small[1] - small[0]) / 4
    assert bootstrap_interval([0.3] * 7) == (0.3, 0.3)


def test_paired_permutation_test() -> None:
    baseline = [1.0] * 50 + [0.0] * 50
    assert paired_permutation_test([0.0] * 20 + [1.0] * 30 + [0.0] * 50, baseline) < 0.001  # 20 problems lost
    assert paired_permutation_test([0.0] + [1.0] * 49 + [0.0] * 50, baseline) > 0.3  # one lost: noise
    assert paired_permutation_test(baseline, baseline) == 1.0
