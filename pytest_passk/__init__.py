"""pytest-passk: evaluate code-generating models by pass@k, as pytest tests."""

from __future__ import annotations

from .sources.completions import SamplePlan, read_completions
from .scoring.estimator import mean_pass_at_k, pass_at_k
from .sandbox.runner import Limits, Outcome, SampleRunner
from .problems import Problem, ProblemFileError, load_problem_file

__version__ = "0.1.0"

__all__ = [
    "Limits",
    "Outcome",
    "Problem",
    "ProblemFileError",
    "SamplePlan",
    "SampleRunner",
    "load_problem_file",
    "mean_pass_at_k",
    "pass_at_k",
    "read_completions",
    "__version__",
]
