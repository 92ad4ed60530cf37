"""The expected outputs of HumanEval+ problems: their canonical solutions' outputs on every
input, and how long each took (the base of EvalPlus's time limit per input).

Computed once per run, as EvalPlus does, by running the canonical solutions in child
processes (one per core; their code is the data file's, trusted as its tests are), and
cached on disk keyed by the hash of the problems' data, so later runs read them.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..cpus import usable_cpus
from ..problems import Problem, ProblemFileError
from ..sandbox import plain
from ..sources.cache import replace_json
from .digest import DIGEST_VERSION

__all__ = ["Digest", "Oracle", "ExpectedOutputs", "dataset_key"]

# What computing them may take at most, all problems together (EvalPlus's reference takes about a minute).
REFERENCE_TIMEOUT = 1800.0


@dataclass(frozen=True)
class Digest:
    """An expected output too large to carry, as the check compares it (see :mod:`.check`)."""

    digest: str
    floats: bool

    def __repr__(self) -> str:  # as the check's source names it
        return f"_PasskDigest({self.digest!r}, {self.floats!r})"


def expected_value(stored: Any) -> Any:
    if isinstance(stored, dict):
        return Digest(str(stored["digest"]), bool(stored["floats"]))
    return plain.decode(stored)


@dataclass(frozen=True)
class Oracle:
    """A problem's expected outputs and the reference's seconds per input, per stage
    (``base``, ``plus``); ``error`` instead when the canonical solution failed."""

    outputs: dict[str, list[Any]]
    seconds: dict[str, list[float]]
    error: str = ""


def dataset_key(problems: list[Problem]) -> str:
    """The hash of everything the expected outputs depend on (``marshal``'s version 0: by value
    alone, where later versions also write which strings are interned and which objects shared)."""
    digest = hashlib.sha256(DIGEST_VERSION.encode())
    for problem in problems:
        assert problem.plus is not None
        digest.update(marshal.dumps([problem.task_id, problem.prompt, problem.canonical_solution, problem.entry_point,
                                     problem.plus.base_input, problem.plus.plus_input], 0))
    return digest.hexdigest()


def _split(tasks: list[dict[str, Any]], parts: int) -> list[list[dict[str, Any]]]:
    """Tasks dealt to ``parts`` children, the most inputs first to the least loaded."""
    shares: list[list[dict[str, Any]]] = [[] for _ in range(max(1, min(parts, len(tasks))))]
    loads = [0] * len(shares)
    for task in sorted(tasks, key=lambda t: -sum(len(v) for v in t["inputs"].values())):
        lightest = loads.index(min(loads))
        shares[lightest].append(task)
        loads[lightest] += sum(len(v) for v in task["inputs"].values())
    return shares


class ExpectedOutputs:
    """The expected outputs of the HumanEval+ problems a run reaches, under ``cache_dir``."""

    def __init__(self, cache_dir: Path) -> None:
        self.directory = cache_dir / "evalplus"

    def path(self, problems: list[Problem]) -> Path:
        return self.directory / f"{dataset_key(problems)}.json"

    def get(self, problems: list[Problem], say: Callable[[str], None] | None = None) -> dict[str, Oracle]:
        """Read from the cache, or compute (and cache) and say so in one line."""
        path = self.path(problems)
        try:
            cached = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            cached = None
        if not isinstance(cached, dict) or any(p.task_id not in cached for p in problems):
            started = time.perf_counter()
            cached = self.compute(problems)
            try:
                replace_json(path, cached)
            except OSError as exc:  # a read-only cache: computed again next time
                if say is not None:
                    say(f"passk: could not cache the expected outputs in {path}: {exc.strerror or exc}")
            if say is not None:
                inputs = sum(len(p.plus.base_input) + len(p.plus.plus_input) for p in problems if p.plus)
                say(f"passk: expected outputs of {len(problems)} {problems[0].suite} problems ({inputs} inputs) "
                    f"computed by their canonical solutions in {time.perf_counter() - started:.1f} s, cached in {path}")
        return {task_id: self._oracle(result) for task_id, result in cached.items()}

    @staticmethod
    def _oracle(result: dict[str, Any]) -> Oracle:
        if "error" in result:
            return Oracle({}, {}, str(result["error"]))
        return Oracle({stage: [expected_value(tree) for tree in result[stage]["outputs"]] for stage in ("base", "plus")},
                      {stage: list(result[stage]["seconds"]) for stage in ("base", "plus")})

    def compute(self, problems: list[Problem]) -> dict[str, Any]:
        """Run the canonical solutions, a child process per core, and gather what they wrote."""
        tasks = []
        for problem in problems:
            assert problem.plus is not None
            if problem.canonical_solution is None:
                raise ProblemFileError(f"{problem.task_id}: an EvalPlus problem needs its canonical_solution")
            tasks.append({"task_id": problem.task_id, "code": problem.prompt + problem.canonical_solution,
                          "entry_point": problem.entry_point,
                          "inputs": {"base": problem.plus.base_input, "plus": problem.plus.plus_input}})
        results: dict[str, Any] = {}
        with tempfile.TemporaryDirectory(prefix="passk-reference-") as scratch:
            children = []
            for number, share in enumerate(_split(tasks, usable_cpus())):
                given, out = Path(scratch, f"tasks-{number}.json"), Path(scratch, f"outputs-{number}.json")
                given.write_text(json.dumps(share), encoding="utf-8")
                child = subprocess.Popen([sys.executable, "-m", "pytest_passk.plus.reference", str(given), str(out)],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                         cwd=scratch)
                children.append((child, out))
            for child, out in children:
                _, errors = child.communicate(timeout=REFERENCE_TIMEOUT)
                if child.returncode != 0 or not out.exists():
                    last = (errors.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
                    raise ProblemFileError(f"computing HumanEval+'s expected outputs failed: {last}")
                results.update(json.loads(out.read_text(encoding="utf-8")))
        return results
