"""How sure a pass@k is: bootstrap intervals over problems, and a paired test between two runs.

pass@k is a mean over problems; its uncertainty comes mostly from which problems
happen to be in the benchmark, so both resample problems. Fixed seeds make a
report reproducible to the last digit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["bootstrap_interval", "paired_permutation_test"]

BOOTSTRAP_RESAMPLES = 10_000
PERMUTATIONS = 10_000
SEED = 20210707  # the Codex paper's arXiv date


def bootstrap_interval(values: Sequence[float], level: float = 0.95,
                       resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (one per problem)."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("no values")
    if data.size == 1 or np.all(data == data[0]):
        return float(data[0]), float(data[0])
    rng = np.random.default_rng(SEED)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def paired_permutation_test(current: Sequence[float], baseline: Sequence[float],
                            permutations: int = PERMUTATIONS) -> float:
    """One-sided p-value that ``current`` is worse than ``baseline`` by chance.

    Per problem the two runs' values are paired; under the null hypothesis each
    pair's difference is as likely negative as positive, so signs are flipped at
    random and the p-value is the share of flipped means at or below the one seen.
    """
    differences = np.asarray(current, dtype=float) - np.asarray(baseline, dtype=float)
    if differences.size == 0:
        raise ValueError("no paired values")
    observed = differences.mean()
    if np.all(differences == 0):
        return 1.0
    rng = np.random.default_rng(SEED)
    signs = rng.choice(np.array([-1.0, 1.0]), size=(permutations, differences.size))
    flipped = (signs * differences).mean(axis=1)
    # Counting the observed arrangement itself keeps the p-value above zero (Phipson & Smyth 2010).
    return float((np.count_nonzero(flipped <= observed + 1e-12) + 1) / (permutations + 1))
