"""The test-process side of sample execution: a client of :mod:`pytest_passk.sandbox.forkserver`.

Each pytest process that runs samples (the only one without xdist, each xdist
worker with it) starts one fork server lazily and submits samples ahead of the
item that reports them, so that sample execution overlaps pytest's own work.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Hashable, Mapping

from ..problems import Problem
from ..verdicts import SampleId, SampleRecord, Verdict
from . import forkserver, wire
from .isolation import describe, missing_layers

__all__ = ["Limits", "SampleRunner", "IsolationReport", "probe_isolation", "sandbox_environment"]


def import_paths() -> tuple[str, ...]:
    """Where this process imports from, as Python set it up (the virtual environment,
    PYTHONPATH, .pth additions, the ini's pythonpath): samples import from there too,
    wherever it lives. Not the directory pytest was started from or by (``python -m
    pytest`` puts the working directory first, the ``pytest`` script its own): that is
    how it was launched, not where anything is installed, and may be a home directory."""
    launch = {os.getcwd(), os.path.dirname(os.path.abspath(sys.argv[0])) if sys.argv and sys.argv[0] else ""}
    return tuple(path for path in sys.path if path and os.path.abspath(path) not in launch)


# Taken when the plugin loads, before collection adds test directories to sys.path.
IMPORT_PATHS = import_paths()

# What a Python program needs from the environment; the rest (tokens, keys) stays out.
ENVIRONMENT_KEPT = ("PATH", "LANG", "LC_ALL", "TZ")


@dataclass(frozen=True)
class Limits:
    timeout: float = 3.0
    memory: int = 4 << 30


@dataclass(frozen=True)
class IsolationReport:
    """What a fork server found it could use: layer -> "" when in force, else why not."""

    mode: str
    layers: dict[str, str]
    description: str

    @property
    def missing(self) -> dict[str, str]:
        return missing_layers(self.layers)


def sandbox_environment(passthrough: tuple[str, ...] = ()) -> dict[str, str]:
    env = {name: os.environ[name] for name in (*ENVIRONMENT_KEPT, *passthrough) if name in os.environ}
    env.setdefault("PATH", "/usr/bin:/bin")
    # Deterministic hashing: a completion whose answer depends on set order gets the same verdict every run.
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["HOME"] = tempfile.gettempdir()
    return env


class SampleRunner:
    """Runs samples in the fork server; replies may arrive in any order.

    With ``deduplicate``, byte-identical completions of the same problem run once
    and share the verdict: the program is the same, and with a fixed hash seed so
    is its behaviour (short of reading the clock or an unseeded random source).
    ``known``: verdicts an interrupted run recorded, by sample, used instead of running it.
    """

    def __init__(self, limits: Limits, passthrough_env: tuple[str, ...] = (), parallel: int = 1,
                 deduplicate: bool = True, isolation: str = "auto",
                 known: Mapping[SampleId, SampleRecord] | None = None, suspicious_passes: bool = False,
                 on_started: Callable[[Problem], None] | None = None) -> None:
        self.parallel = max(1, parallel)
        self.deduplicate = deduplicate
        self.isolation = isolation
        self.suspicious_passes = suspicious_passes
        self.known = known or {}
        self.limits = limits
        self.env = sandbox_environment(passthrough_env)
        self.process: subprocess.Popen[bytes] | None = None
        self.isolation_report: IsolationReport | None = None
        self.problem_ids: dict[tuple[str, str], int] = {}
        self.problems: dict[int, Problem] = {}  # by id
        self.on_started = on_started  # called as the fork server starts a problem's first sample
        self.defined: set[int] = set()  # problems the running fork server has compiled
        self.samples: dict[Hashable, tuple[Problem, int]] = {}  # sample key -> its problem and index
        # sample key -> the execution that decides it; (problem, completion) -> execution
        self.decided_by: dict[Hashable, int] = {}
        self.executions: dict[Hashable, int] = {}
        self.owner: dict[int, Hashable] = {}  # the sample each execution was started for
        self.pending: set[int] = set()
        self.done: dict[int, SampleRecord] = {}  # each execution's record, for the sample it was started for
        self.sent: dict[int, tuple[Problem, str]] = {}  # what each pending execution runs
        self.dropped: set[int] = set()  # executions the fork server forgot unstarted (see withdraw)
        self.lock = threading.Lock()  # the fork server's request pipe: withdraw may come from another thread

    def _server(self) -> subprocess.Popen[bytes]:
        if self.process is None or self.process.poll() is not None:
            self.process, self.isolation_report = start_server(self.parallel, self.isolation, self.limits.memory,
                                                               self.env)
            self.defined.clear()
            if self.isolation == "strict" and self.isolation_report.missing:
                raise OSError("strict isolation unavailable: " + self.isolation_report.description)
        return self.process

    def submit(self, key: Hashable, problem: Problem, index: int, completion: str | None) -> None:
        """Queue sample ``index`` of ``problem`` under ``key`` (once: later calls for the same
        key do nothing). ``completion`` None is a failed sample (null in the samples)."""
        if key in self.decided_by:
            return
        self.samples[key] = (problem, index)
        problem_key = (problem.suite, problem.task_id)
        identity: Hashable = (problem_key, completion) if self.deduplicate else (problem_key, completion, key)
        execution = self.executions.get(identity)
        if execution is None:
            execution = self.executions[identity] = len(self.executions)
            self.owner[execution] = key
            known = self.known.get((problem.suite, problem.task_id, index))
            if completion is None:
                self._decide(execution, Verdict.FAILED, "no completion (null or missing in the samples)", 0.0)
            elif known is not None:
                self.done[execution] = known
            else:
                self._send(execution, problem, completion)
        self.decided_by[key] = execution

    def _send(self, execution: int, problem: Problem, completion: str) -> None:
        try:
            with self.lock:
                server = self._server()
                assert server.stdin is not None
                problem_id = self.problem_ids.setdefault((problem.suite, problem.task_id), len(self.problem_ids))
                self.problems[problem_id] = problem
                if problem_id not in self.defined:
                    wire.write(server.stdin, wire.DefineProblem(problem_id, problem.prompt, problem.test, problem.entry_point,
                                                                 problem.data))
                    self.defined.add(problem_id)
                timeout = problem.timeout if problem.timeout is not None else self.limits.timeout
                wire.write(server.stdin, wire.RunSample(execution, problem_id, completion, timeout))
        except (OSError, EOFError) as exc:
            self._server_lost()
            self._decide(execution, Verdict.ERROR, f"sample runner failed (harness error): {exc}", 0.0)
            return
        self.pending.add(execution)
        self.sent[execution] = (problem, completion)

    def withdraw(self, problem: Problem) -> None:
        """Another process runs ``problem``'s samples now: the fork server forgets those it has
        not started (from any thread; one that is wanted here after all is sent again)."""
        with self.lock:
            problem_id = self.problem_ids.get((problem.suite, problem.task_id))
            server = self.process
            if problem_id is None or problem_id not in self.defined or server is None or server.stdin is None:
                return
            try:
                wire.write(server.stdin, wire.DropProblem(problem_id))
            except (OSError, ValueError):  # the server is gone or going: nothing of it runs any more
                pass

    def _decide(self, execution: int, verdict: Verdict, message: str, seconds: float) -> None:
        problem, index = self.samples[self.owner[execution]]
        if verdict is Verdict.SUSPICIOUS and self.suspicious_passes:
            verdict, message = Verdict.PASSED, f"suspicious, counted as passed: {message}"
        self.done[execution] = SampleRecord(problem.suite, problem.task_id, index, verdict, message, round(seconds, 6))

    def result(self, key: Hashable) -> SampleRecord:
        """Block until ``key``'s verdict is in."""
        execution = self.decided_by.get(key)
        if execution is None:
            raise KeyError(f"sample {key!r} was never submitted")
        while execution not in self.done:
            if execution in self.dropped:  # withdrawn, and wanted here after all
                self.dropped.discard(execution)
                self._send(execution, *self.sent.pop(execution))
                continue
            server = self.process
            assert server is not None and server.stdout is not None
            try:
                reply = wire.read(server.stdout)
            except (EOFError, OSError):
                self._server_lost()
                continue
            if isinstance(reply, wire.SampleVerdict):
                self.pending.discard(reply.id)
                self.sent.pop(reply.id, None)
                self._decide(reply.id, reply.verdict, reply.message, reply.seconds)
            elif isinstance(reply, wire.ProblemStarted) and self.on_started is not None and reply.problem in self.problems:
                self.on_started(self.problems[reply.problem])
            elif isinstance(reply, wire.SampleDropped) and reply.id in self.pending:
                self.pending.discard(reply.id)
                self.dropped.add(reply.id)
        record = self.done[execution]
        return record if self.owner[execution] == key else record.for_sample(self.samples[key][1])

    def _server_lost(self) -> None:
        """The fork server died: whatever it held gets a harness verdict; the next submit restarts it."""
        for execution in self.pending:
            self._decide(execution, Verdict.ERROR, "sample runner died (harness error)", 0.0)
            del self.sent[execution]
        self.pending.clear()
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self._close_pipes()
            self.process = None

    def _close_pipes(self) -> None:
        assert self.process is not None
        with self.lock:
            for pipe in (self.process.stdin, self.process.stdout):
                if pipe is not None:
                    try:
                        pipe.close()
                    except OSError:
                        pass

    def close(self) -> None:
        if self.process is None:
            return
        # On end of input the server kills whatever still runs (samples submitted
        # ahead that no item will report, after -x or Ctrl-C) and exits.
        self._close_pipes()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def start_server(parallel: int, isolation: str, memory: int, env: dict[str, str],
                 without: tuple[str, ...] = ()) -> tuple[subprocess.Popen[bytes], IsolationReport]:
    """Start a fork server and read what isolation it could set up (``without``: layers to leave out).

    A layer that would hide a directory this process imports from is left out (``auto``)
    or refused (``strict``), and named in the report: it would change verdicts silently."""
    process, layers, hidden, entry_error = _spawn_server(parallel, isolation, memory, env, without)
    if hidden and isolation != "strict":
        found = hidden
        culprits = tuple(sorted(set(found.values())))
        with process:  # it ended after saying so; closes its pipes
            pass
        process, layers, hidden, entry_error = _spawn_server(parallel, isolation, memory, env, (*without, *culprits))
        for layer in culprits:  # named by what the first server found (the second hides nothing)
            layers[layer] = "would hide " + next(path for path, by in sorted(found.items()) if by == layer)
    if hidden or entry_error:
        with process:
            pass
        if entry_error:
            raise OSError(f"a sample can't start in this sandbox ({entry_error}); "
                          "--passk-isolation=basic leaves out the namespaces and cgroups")
        path, layer = next(iter(sorted(hidden.items())))
        raise OSError(f"--passk-isolation={isolation}: {layer} would hide {path} from samples")
    return process, IsolationReport(isolation, layers, describe(isolation, layers))


def _spawn_server(parallel: int, isolation: str, memory: int, env: dict[str, str], without: tuple[str, ...]
                  ) -> tuple[subprocess.Popen[bytes], dict[str, str], dict[str, str], str]:
    process = subprocess.Popen(
        [sys.executable, "-s", str(Path(forkserver.__file__)), str(parallel), isolation, str(memory),
         ",".join(without), json.dumps(IMPORT_PATHS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=tempfile.gettempdir(),
    )
    assert process.stdout is not None
    try:
        ready = wire.read(process.stdout)
    except (EOFError, OSError, ValueError):
        ready = None
    if not isinstance(ready, wire.Ready):
        process.kill()
        process.wait()
        raise OSError("the sample runner did not start")
    return process, ready.layers, ready.hidden, ready.entry_error


def probe_isolation(isolation: str, memory: int) -> IsolationReport:
    """Which isolation this machine gives samples (the controller asks once, for the header)."""
    process, report = start_server(1, isolation, memory, sandbox_environment())
    with process:  # closes its pipes
        assert process.stdin is not None
        process.stdin.close()
    return report
