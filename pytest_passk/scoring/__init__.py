"""Scoring: from verdicts to pass@k, its confidence intervals and the paper's other metrics."""
