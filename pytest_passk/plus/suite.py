"""Problem files as a run uses them: HumanEval+ problems completed with their checks."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Callable

import pytest

from ..problems import Problem, load_problem_file
from .check import PlusTiming, with_plus_check
from .oracles import ExpectedOutputs

__all__ = ["load_problems", "problems_of"]

# The problem files this process has read, by resolved path: without xdist the controller and
# the test process are one, and HumanEval+'s data takes seconds to read.
READ_PROBLEMS = pytest.StashKey[dict[Path, list[Problem]]]()


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


def problems_of(config: pytest.Config, path: Path, cache_dir: Path, timing: PlusTiming,
                say: Callable[[str], None] | None = None) -> list[Problem]:
    """:func:`load_problems`, once a process for each file."""
    read = config.stash.setdefault(READ_PROBLEMS, {})
    key = path.resolve()
    if key not in read:
        read[key] = load_problems(path, cache_dir, timing, say)
        # They live until the session ends: out of the collector's way (HumanEval+'s data is
        # millions of objects, which every full collection, and pytest's at its end, would walk).
        gc.freeze()
    return read[key]
