"""The trusted side of a sample (stdlib only): runs the problem's check, decides the verdict.

The fork server starts one judge per slot (samples that may run at once); a
judge handles its slot's samples one after another, forking a sandboxed
candidate (:mod:`pytest_passk.sandbox.candidate`) for each. The judge alone
holds the pipe verdicts travel on. It runs the prompt (so the test's helpers
are the prompt's, whatever the completion redefines) and the test here; the
entry point, and any other name the test takes from the completion, is a
:class:`RemoteFunction` whose calls get plain data from the candidate
(:mod:`pytest_passk.sandbox.plain`). The candidate first runs the test itself,
the reference evaluator's way, logging each call of the entry point; the judge
takes a logged answer only for the very question its own test asks (the same
name and plain arguments, in order), and asks the candidate live from the first
question that differs. Nothing the candidate does can write a verdict: it can
only answer.

Where the trusted check fails but the candidate's own run of the test passed
(the completion redefined a helper of the prompt's, returned an object of its
own or one that is not plain data, compiles only as part of the test's text,
or changed something else the test relies on), the verdict is ``suspicious``,
with the reason; ``--passk-suspicious-passes`` counts those as passed, as the
reference evaluator does.
"""

from __future__ import annotations

import contextlib
import gc
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from typing import Any, NoReturn

if __package__:
    from . import candidate, plain, program, wire
else:  # imported by the fork server run as a script
    import candidate  # type: ignore[no-redef,import-not-found]
    import plain  # type: ignore[no-redef,import-not-found]
    import program  # type: ignore[no-redef,import-not-found]
    import wire  # type: ignore[no-redef,import-not-found]

__all__ = ["JudgeProcess", "Judge", "RemoteFunction", "PLAIN_TYPES"]

Verdict = wire.Verdict
PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 1, 4
PLAIN_TYPES = "None, bool, int, float, complex, str, bytes, and lists, tuples, sets and dicts of them"


class CandidateGone(BaseException):
    """The candidate's process hung up: its exit status decides the verdict."""


class Rejected(BaseException):
    """A result that fails the sample whatever the test does about it (a BaseException,
    so that a test's ``except Exception`` can't swallow it)."""


class RemoteFunction:
    """What the check calls in place of a function the completion defined."""

    def __init__(self, judge: Judge, name: str) -> None:
        self.judge, self.__name__, self.__qualname__ = judge, name, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.judge.call(self.__name__, args, kwargs)

    def __repr__(self) -> str:
        return f"<function {self.__name__} (the completion's, in the sandbox)>"


class Judge:
    """One sample's check, against the candidate on ``channel``."""

    def __init__(self, channel: plain.Channel, problem: program.ProblemCode) -> None:
        self.channel, self.problem = channel, problem
        self.sources = {"<prompt>": self.problem.prompt, "<test>": self.problem.test}
        self.callbacks: list[Any] = []  # callables the test handed the candidate, by reference
        self.arguments = plain.Encoder(functions=self.register, pack=True)
        self.results = plain.Encoder(pack=True)
        self.reasons: list[str] = []  # what of the completion's own was in play
        self.rejection = ""  # a result that fails the sample
        self.log: list[Any] = []  # the candidate's calls in its own run of the test, a frame of them
        self.logged = 0  # how many of that frame this check has asked too; -1 once a question differed
        self.frames = 0  # frames of the log still to read
        self.reference_passed = False  # what the candidate says its own run of the test did

    def register(self, function: Any) -> int:
        self.callbacks.append(function)
        return len(self.callbacks) - 1

    def verdict(self) -> tuple[Verdict, str]:
        """Run the check on the candidate; the verdict and its message."""
        try:
            self.check()
            if self.rejection:
                return Verdict.FAILED, self.rejection
            return Verdict.PASSED, ""
        except CandidateGone:
            raise
        except Rejected:
            return Verdict.FAILED, self.rejection
        except plain.Malformed as exc:
            return Verdict.CRASHED, f"sent something that is not an answer on its channel to the check ({exc})"
        except program.TimeoutException:
            return Verdict.TIMEOUT, "timed out"
        except MemoryError:
            return Verdict.OOM, "MemoryError: out of memory"
        except BaseException as exc:  # SystemExit and KeyboardInterrupt are failures too
            return Verdict.FAILED, self.rejection or program.describe_failure(exc, self.sources)

    def check(self) -> None:
        """``prompt; test; check(entry_point)``, the completion's names taken from the candidate."""
        problem = self.problem
        namespace: dict[str, Any] = {}
        if problem.prompt_code is not None:
            exec(problem.prompt_code, namespace)
        if problem.test_code is None:
            failure = SyntaxError(problem.test_error)
            failure.passk_description = problem.test_error  # type: ignore[attr-defined]
            raise failure
        program.seed_random()
        exec(problem.test_code, problem.test_namespace(namespace))
        first = self.receive()
        if (first[0], len(first)) not in (("raise", 6), ("ready", 6)):
            raise plain.Malformed(f"a first message of kind {first[0]!r}")
        if first[0] == "raise":
            _, bases, description, text, passed, reason = first
            self.reference_passed = passed is True
            if reason:
                self.reasons.append(str(reason))
            raise program.rebuilt(first[:4])
        _, exports, redefined, self.log, passed, self.frames = first
        self.reference_passed = passed is True
        if type(self.log) is not list or type(self.frames) is not int:
            raise plain.Malformed("a log that is not a list")
        namespace.pop(problem.entry_point, None)  # the prompt's stub is not the completion's function
        for name, kind, payload in exports:
            name = str(name)
            if name not in problem.remote or name in namespace:
                continue  # the prompt's and the test's own definitions win
            if kind == "function":
                namespace[name] = RemoteFunction(self, name)
            elif kind == "value":
                namespace[name] = plain.decode(payload)
            elif kind == "module" and (payload in sys.modules or payload in getattr(sys, "stdlib_module_names", ())):
                namespace[name] = __import__(str(payload))
            elif name == problem.entry_point:
                self.reject(f"{name} is {payload}, not a function or plain data")
        self.reasons += [f"redefines {name}, a helper of the prompt's that the test uses" for name in redefined]
        check = namespace["check"] if "check" in namespace else undefined("check")
        check(namespace[problem.entry_point] if problem.entry_point in namespace else undefined(problem.entry_point))

    def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        key = plain.call_key(name, args, kwargs)
        outcome = self.logged_outcome(key) if key is not None else None  # the candidate logged none such
        if outcome is None:
            try:
                args_tree, kwargs_tree = self.arguments.encode(args), self.arguments.encode(kwargs)
            except plain.NotPlain as exc:
                raise TypeError(f"the test passed {exc} to {name}: only plain data crosses into the sandbox") from None
            outcome = self.request(["call", name, args_tree, kwargs_tree])
        kind = outcome[0]
        if kind == "return":
            _, tree, changed, converted = outcome
            for position, value in changed:
                update(args[position] if isinstance(position, int) else kwargs[position], plain.decode(value))
            for class_name in converted:
                self.reasons.append(f"{name} returned a {class_name}, a class the completion defined, compared as its plain base")
            return plain.decode(tree)
        if kind == "raise":
            raise program.rebuilt(outcome)
        if kind == "not plain":
            self.reasons.append(f"{name} returned {outcome[1]}")
            self.reject(f"{name} returned {outcome[1]}, not plain data ({PLAIN_TYPES})")
        if kind == "too large":
            self.reject(f"{name} returned a result of {outcome[1]}")
        raise plain.Malformed(f"an answer of kind {kind!r}")

    def logged_outcome(self, key: str) -> list[Any] | None:
        """The logged answer to exactly this question (by :func:`plain.call_key`), if the log has
        it at this point; from the first question it doesn't have, every later one is asked live."""
        if self.logged >= len(self.log) and self.frames > 0:
            self.log, self.logged = self.next_frame(), 0
        if self.logged < 0 or self.logged >= len(self.log):
            self.logged = -1
            return None
        entry = self.log[self.logged]
        if type(entry) is not list or len(entry) != 2 or entry[0] != key or type(entry[1]) is not list or not entry[1]:
            self.logged = -1
            return None
        self.logged += 1
        return entry[1]

    def reject(self, message: str) -> NoReturn:
        self.rejection = self.rejection or message[: program.MESSAGE_LIMIT]
        raise Rejected(message)

    def next_frame(self) -> list[Any]:
        """The log's next frame, ``["log", calls]``."""
        frame = self.receive()
        if len(frame) != 2 or frame[0] != "log" or type(frame[1]) is not list:
            raise plain.Malformed(f"a frame of the log of kind {frame[0]!r}")
        self.frames -= 1
        return frame[1]

    def request(self, message: list[Any]) -> list[Any]:
        try:
            while self.frames > 0:  # what the log still holds comes before any answer: skipped unread
                self.channel.frame()
                self.frames -= 1
            return self.channel.request(message, self.answer_callback)
        except (EOFError, OSError):
            raise CandidateGone from None

    def receive(self) -> list[Any]:
        try:
            return self.channel.receive()
        except (EOFError, OSError):
            raise CandidateGone from None

    def answer_callback(self, message: list[Any]) -> None:
        """``["call", reference, args, kwargs]`` from the candidate: run the test's callable here."""
        _, reference, args_tree, kwargs_tree = message
        function = self.callbacks[int(reference)]
        try:
            result = function(*plain.decode(args_tree), **plain.decode(kwargs_tree))
        except (program.TimeoutException, plain.Malformed):
            raise
        except BaseException as exc:
            self.channel.send(program.raised(exc, self.sources))
            return
        try:
            self.channel.send(["return", self.results.encode(result)])
        except plain.NotPlain as exc:  # too large, too
            self.channel.send(["raise", ["TypeError"], f"TypeError: the callback returned {exc}", str(exc)])

    def reconsider(self, verdict: Verdict, message: str) -> tuple[Verdict, str]:
        """A sample the trusted check fails and the candidate's own run passes: `suspicious`."""
        if verdict is not Verdict.FAILED or not self.reference_passed:
            return verdict, message
        reasons = "; ".join(dict.fromkeys(self.reasons)) or "it changed something the test relies on in its own process"
        told = f"passes only as the reference evaluator runs it ({reasons})"
        if not self.rejection:
            told += f"; with the prompt's helpers and plain results: {message}"
        return Verdict.SUSPICIOUS, told[: program.MESSAGE_LIMIT]


def undefined(name: str) -> NoReturn:
    raise NameError(f"name {name!r} is not defined")


def update(target: Any, value: Any) -> None:
    """Give a mutable argument the contents the candidate left it with."""
    if type(target) is not type(value):
        return
    if isinstance(target, (list, bytearray)):
        target[:] = value
    elif isinstance(target, (dict, set)):
        target.clear()
        target.update(value)


STARVED_LIMIT = 3.0  # at most this many timeouts of wall clock, however long a sample waited for a CPU
CONFINEMENT_WAIT = 60.0  # seconds a candidate may take to be confined and waiting for its sample


class NotConfined(Exception):
    """The candidate was not confined and waiting within :data:`CONFINEMENT_WAIT`."""

    def __init__(self, *_: Any) -> None:
        super().__init__(f"the sandboxed process was not confined and waiting within {CONFINEMENT_WAIT:g} s")


class Deadline:
    """A sample's time limit: ``timeout`` seconds of wall clock, not counting the time its
    process was ready to run but waited for a CPU (the reference evaluator gives each sample a
    core; here a long-running sample yields to the others beside it, see the fork server), and
    at most ``STARVED_LIMIT`` timeouts in all. A sample that sleeps or blocks waits for no CPU:
    it times out at ``timeout``, as there."""

    def __init__(self, started: float, timeout: float, pid: int, forked: bool = False) -> None:
        # forked: the sample entered its own PID namespace, and runs in the candidate's one
        # child (see isolation's _enter_pid_namespace); the candidate itself only waits for it.
        self.started, self.timeout, self.pid, self.forked = started, timeout, pid, forked

    def remaining(self) -> float:
        elapsed = time.monotonic() - self.started
        left = self.timeout - elapsed
        if left > 0:
            return left  # the common case: no need to ask the scheduler
        return min(left + self.waited_for_cpu(), STARVED_LIMIT * self.timeout - elapsed)

    def waited_for_cpu(self) -> float:
        """Seconds the sample's process spent runnable but not running (``/proc/PID/schedstat``)."""
        try:
            pid = self.pid
            if self.forked:
                with open(f"/proc/{pid}/task/{pid}/children") as listing:
                    pid = int(listing.read().split()[0])
            with open(f"/proc/{pid}/schedstat") as stats:
                return int(stats.read().split()[1]) / 1e9
        except (OSError, ValueError, IndexError):
            return 0.0


class Waiting:
    """A candidate process started ahead of its sample, confined and waiting for it."""

    __slots__ = ("pid", "reading", "writing", "workdir", "problems", "status")

    def __init__(self, pid: int, reading: int, writing: int, workdir: str, problems: set[int]) -> None:
        self.pid, self.reading, self.writing, self.workdir, self.problems = pid, reading, writing, workdir, problems
        self.status: int | None = None

    def end(self) -> int:
        """Kill it (and in a PID namespace everything it started), reap it, remove its directory;
        once (a reaped pid may be another process's by now)."""
        if self.status is None:
            for fd in (self.reading, self.writing):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self.status = end_candidate(self.pid)
            shutil.rmtree(self.workdir, ignore_errors=True)
        return self.status


class JudgeProcess:
    """A slot's judge: reads ``problem`` and ``sample`` messages from the fork server, writes
    each sample's ``verdict`` (or ``exited``: the candidate ended before the check did).

    The next sample's candidate is forked, confined and waiting before that sample comes, and
    a finished one is reaped after its verdict is sent: a fork and a process's end, the
    costliest steps of a sample, are off the path from a sample to its verdict."""

    def __init__(self, requests: int, replies: int, slot: int, tmproot: str, confinement: Any) -> None:
        self.requests, self.replies, self.slot, self.tmproot, self.confinement = requests, replies, slot, tmproot, confinement
        self.problems: dict[int, program.ProblemCode] = {}
        self.inbox = wire.FrameBuffer()
        self.waiting: Waiting | None = None

    def serve(self) -> NoReturn:
        write, exit_now = os.write, os._exit
        try:
            enter_judge(self.confinement)
            self.waiting = self.start_candidate()
            while True:
                chunk = os.read(self.requests, 1 << 20)
                if not chunk:
                    break
                for message in self.inbox.feed(chunk):
                    if isinstance(message, wire.DefineProblem):
                        self.problems[message.id] = program.ProblemCode(message.prompt, message.test, message.entry_point,
                                                                                  message.data)
                    elif isinstance(message, wire.RunSample):
                        running, self.waiting = self.waiting, None
                        try:
                            write(self.replies, wire.encode(self.run(message, running)))
                        finally:
                            if running is not None:
                                running.end()
                        self.waiting = self.start_candidate()
        finally:
            if self.waiting is not None:
                self.waiting.end()
            exit_now(0)

    def start_candidate(self) -> Waiting | None:
        workdir = tempfile.mkdtemp(dir=self.tmproot)
        theirs_reading, ours_writing = os.pipe()
        ours_reading, theirs_writing = os.pipe()
        try:
            self.confinement.before_fork()
            # What the candidate inherits stays out of its collector's sight (a collection writes
            # to every object it walks: a copy of each page), and back in this one's after.
            gc.freeze()
            pid = os.fork()
        except OSError:
            gc.unfreeze()
            self.confinement.after_fork()
            for fd in (theirs_reading, ours_writing, ours_reading, theirs_writing):
                os.close(fd)
            shutil.rmtree(workdir, ignore_errors=True)
            return None  # tried again when a sample comes
        if pid == 0:
            candidate.run_candidate(theirs_reading, theirs_writing, self.slot, workdir, self.problems, self.confinement)
        gc.unfreeze()
        self.confinement.after_fork()
        os.close(theirs_reading)
        os.close(theirs_writing)
        return Waiting(pid, ours_reading, ours_writing, workdir, set(self.problems))

    def run(self, request: wire.RunSample, running: Waiting | None) -> wire.SampleVerdict | wire.CandidateExited:
        started = time.monotonic()
        try:
            if running is None:
                raise OSError("no candidate process could be started")
            problem = self.problems[request.problem]
            channel = plain.Channel(running.reading, running.writing, lambda: CONFINEMENT_WAIT - (time.monotonic() - started),
                                    NotConfined)
            judge = Judge(channel, problem)
            try:
                # The sample's clock starts once its process is confined and waiting (it was started
                # ahead, and normally is): a kernel slow to set up its namespaces and cgroups must not
                # time out an honest sample.
                if judge.receive() != ["confined"]:
                    raise plain.Malformed("a candidate that did not say it was confined")
                channel.remaining = Deadline(time.monotonic(), request.timeout, running.pid,
                                             self.confinement.sample_forks()).remaining
                channel.expired = program.TimeoutException
                fields = None if request.problem in running.problems else problem.fields()
                channel.send(["sample", request.problem, request.completion, request.timeout, fields])
                verdict: tuple[Verdict, str] = judge.reconsider(*judge.verdict())
            except CandidateGone:
                status = running.end()
                return wire.CandidateExited(request.id, status, time.monotonic() - started)
        except BaseException as exc:
            verdict = (Verdict.ERROR, f"the check could not run (harness error): {type(exc).__name__}: {exc}")
        return wire.SampleVerdict(request.id, verdict[0], verdict[1], time.monotonic() - started)


def end_candidate(pid: int) -> int:
    """Kill the candidate's process group (in a PID namespace, everything it started) and reap it."""
    if pid <= 0:
        return 0
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except InterruptedError:
            continue
        except ChildProcessError:
            return 0


def enter_judge(confinement: Any) -> None:
    """Set up the judge's process: its own process group, not dumpable, limits."""
    os.setpgid(0, 0)
    # Not dumpable: a candidate, with no capabilities, can't open this process's
    # descriptors or memory through /proc, nor trace it.
    confinement.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    if confinement.in_force("parent-death"):
        confinement.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if confinement.memory > 0:
        resource.setrlimit(resource.RLIMIT_AS, (confinement.memory, confinement.memory))
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    sys.stdout = sys.stderr = sys.stdin = program.SwallowedOutput()
    gc.set_threshold(100_000)
    gc.enable()
