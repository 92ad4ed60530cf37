"""Problem files as a run uses them: HumanEval+ problems completed with their checks.

Each process that collects reads the file; the checks it makes from the data and the
expected outputs are cached beside those outputs, keyed by everything they are made
of (the problems, the time limits, this package's check and digest code), so that
each process after the first reads them in one step instead of building them again.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
from pathlib import Path
from typing import Callable

import pytest

from ..problems import Problem, load_problem_file
from ..sources.cache import replace_json
from . import check, digest
from .check import PlusTiming, with_plus_check
from .oracles import ExpectedOutputs, dataset_key

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
    cached = cache_dir / "evalplus" / f"checks-{checks_key(plus, timing)}.json"
    built = read_checks(cached, plus)
    if built is None:
        oracles = ExpectedOutputs(cache_dir).get(plus, say)
        built = {p.task_id: with_plus_check(p, oracles[p.task_id], timing) for p in plus}
        try:
            replace_json(cached, {task_id: [p.test, p.data, p.timeout, p.cost] for task_id, p in built.items()})
        except OSError:
            pass  # a read-only cache: built again next time (the expected outputs' own line says so)
    return [built[p.task_id] if p.plus is not None else p for p in problems]


def read_checks(path: Path, problems: list[Problem]) -> dict[str, Problem] | None:
    """The problems with the checks cached in ``path``; None if it has not every one."""
    try:
        checks = json.loads(path.read_text(encoding="utf-8"))
        built = {}
        for problem in problems:
            test, data, timeout, cost = checks[problem.task_id]
            if not (isinstance(test, str) and isinstance(data, str) and isinstance(timeout, (int, float))
                    and isinstance(cost, (int, float, type(None)))):
                return None
            built[problem.task_id] = dataclasses.replace(problem, test=test, data=data, timeout=float(timeout),
                                                         cost=cost)
        return built
    except (OSError, ValueError, KeyError, TypeError):  # none yet, or not one this code wrote
        return None


# What a check is made by besides its problem's data: the code that writes it.
CHECK_CODE = hashlib.sha256(Path(check.__file__).read_bytes() + Path(digest.__file__).read_bytes()).hexdigest()


def checks_key(problems: list[Problem], timing: PlusTiming) -> str:
    """The hash of everything the problems' checks are made of: what their expected outputs are
    (:func:`dataset_key`), and what the check adds to them."""
    added = [(problem.suite, problem.plus.atol if problem.plus else None) for problem in problems]
    return hashlib.sha256(f"{dataset_key(problems)} {CHECK_CODE} {timing!r} {added!r}".encode()).hexdigest()


def problems_of(config: pytest.Config, path: Path, cache_dir: Path, timing: PlusTiming,
                say: Callable[[str], None] | None = None) -> list[Problem]:
    """:func:`load_problems`, once a process for each file."""
    read = config.stash.setdefault(READ_PROBLEMS, {})
    key = path.resolve()
    if key not in read:
        # HumanEval+'s data is millions of objects that live until the session ends: the collector
        # is kept from walking them (with the test process's own) while they are read, and after.
        enabled = gc.isenabled()
        gc.disable()
        try:
            read[key] = load_problems(path, cache_dir, timing, say)
        finally:
            if enabled:
                gc.enable()
        gc.freeze()
    return read[key]
