"""pytest-passk: evaluate code-generating models by pass@k, as pytest tests.

The pipeline, one subpackage a stage: :mod:`.problems` -> :mod:`.sources` (completions)
-> :mod:`.sandbox` (execution) -> :mod:`.scoring` (pass@k) -> :mod:`.report` and
:mod:`.gates`; :mod:`.plugin` wires them into pytest through :mod:`.controller` and
:mod:`.worker`.
"""

from __future__ import annotations

from .problems import Problem, ProblemFileError, load_problem_file
from .sandbox.runner import Limits, SampleRunner
from .scoring.estimator import mean_pass_at_k, pass_at_k
from .sources.completions import CompletionPlan, read_completions
from .verdicts import SampleRecord, Verdict

__version__ = "0.1.0"

__all__ = [
    "CompletionPlan",
    "Limits",
    "Problem",
    "ProblemFileError",
    "SampleRecord",
    "SampleRunner",
    "Verdict",
    "load_problem_file",
    "mean_pass_at_k",
    "pass_at_k",
    "read_completions",
    "__version__",
]
