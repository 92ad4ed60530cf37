"""Problem files as a run uses them: HumanEval+ problems completed with their checks."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..problems import Problem, load_problem_file
from .check import PlusTiming, with_plus_check
from .oracles import ExpectedOutputs

__all__ = ["load_problems"]


def load_problems(path: Path, cache_dir: Path, timing: PlusTiming,
                  say: Callable[[str], None] | None = None) -> list[Problem]:
    """Every problem in ``path``; EvalPlus's with the test made from their data and the expected
    outputs (computed here, said in one line, or read from the cache under ``cache_dir``)."""
    problems = load_problem_file(path)
    plus = [problem for problem in problems if problem.plus is not None]
    if not plus:
        return problems
    oracles = ExpectedOutputs(cache_dir).get(plus, say)
    return [with_plus_check(p, oracles[p.task_id], timing) if p.plus is not None else p for p in problems]
