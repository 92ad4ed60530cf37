"""Sample verdicts that cross from an xdist worker a problem at a time.

xdist's controller handles every item of every worker one event at a time (its start,
report, finish, completion), and that serial work capped a run at about a thousand
samples a second however many cores it had. Under per-problem scheduling a worker
therefore runs each problem's selected samples as one item (``ProblemItem``), and sends
their records in one message on a channel of its own; the controller replays one report
per sample through pytest's hooks (terminal, ``--lf``, junitxml, ``-x``, this plugin's
records), so every sample is still a test with its own node id and outcome.
"""

from __future__ import annotations

import contextlib
import queue
import re
from typing import Any

import pytest

from .verdicts import SampleRecord

__all__ = ["BATCH_CHANNELS", "RUN_SESSION", "WorkerChannel", "problem_item_name", "samples_in", "sample_row", "replay"]

# On the controller: each worker's channel its problems' records arrive on, and the session.
BATCH_CHANNELS = pytest.StashKey[dict[Any, "WorkerChannel"]]()
RUN_SESSION = pytest.StashKey[pytest.Session]()
# How long the controller waits for a batch xdist says is complete (it was sent before that).
BATCH_WAIT = 300.0

PROBLEM_ITEM = re.compile(r"\[(\d+) samples?\]$")


class WorkerChannel:
    """The controller's end of a worker's batch channel. From the worker: its problems'
    records, a batch each, and ``{"started": scope}`` as its fork server starts a problem dealt
    to it (read as they come, in execnet's receiver thread). To the worker: ``{"taken": scope}``,
    a problem dealt to it that another worker runs now."""

    CLOSED = object()

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.batches: queue.Queue[Any] = queue.Queue()
        self.started: set[str] = set()
        channel.setcallback(self.received, endmarker=self.CLOSED)

    def received(self, message: Any) -> None:
        if type(message) is dict and "started" in message:
            self.started.add(message["started"])
        else:
            self.batches.put(message)

    def batch(self) -> dict[str, Any]:
        """The next batch, which the worker sent before xdist heard its item was complete."""
        message = self.batches.get(timeout=BATCH_WAIT)
        if message is self.CLOSED:
            raise EOFError("the worker's batch channel closed")
        return message  # type: ignore[no-any-return]

    def taken(self, scope: str) -> None:
        with contextlib.suppress(Exception):  # a worker that is gone has nothing to drop
            self.channel.send({"taken": scope})


def problem_item_name(task_id: str, count: int) -> str:
    """``HumanEval/0[100 samples]``: distinct from its samples' ids and from a problem without any."""
    return f"{task_id}[{count} sample{'s' if count != 1 else ''}]"


def samples_in(nodeid: str) -> int | None:
    """The number of samples a problem item runs, None for any other node id."""
    match = PROBLEM_ITEM.search(nodeid)
    return int(match.group(1)) if match else None


def sample_row(nodeid: str, location: tuple[str, int | None, str], record: SampleRecord, seconds: float) -> list[Any]:
    """One sample of a batch, as plain data (execnet carries nothing else)."""
    return [nodeid, list(location), record.to_properties(), seconds]


def replay(config: pytest.Config, node: Any, batch: dict[str, Any]) -> None:
    """Report each sample of ``batch`` as pytest reports a test: its start, its call report
    (passed, or failed with the verdict and message), its finish; a failure counts towards
    ``-x`` and ``--maxfail`` as xdist counts the reports it receives."""
    hook = config.hook
    dsession = config.pluginmanager.getplugin("dsession")
    count_failure = getattr(dsession, "_handlefailures", None)
    for nodeid, location, properties, seconds in batch["samples"]:
        record = SampleRecord.from_properties(properties)
        where = (location[0], location[1], location[2])
        report = pytest.TestReport(nodeid, where, {}, "passed" if record.passed else "failed",
                                   None if record.passed else f"{record.verdict}: {record.message}", "call",
                                   user_properties=[("passk", properties)], duration=seconds)
        report.node = node  # type: ignore[attr-defined]  # as xdist marks its reports: "[gw0]" under -v
        hook.pytest_runtest_logstart(nodeid=nodeid, location=where)
        hook.pytest_runtest_logreport(report=report)
        hook.pytest_runtest_logfinish(nodeid=nodeid, location=where)
        if not record.passed and count_failure is not None:
            count_failure(report)
