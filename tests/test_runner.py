"""The test process's side of execution, driven directly (no pytest session in between)."""

from __future__ import annotations

import os
import threading
import time

from pytest_passk.problems import Problem
from pytest_passk.sandbox.runner import Limits, SampleRunner
from pytest_passk.verdicts import SampleRecord, Verdict

FLOOD_PROBLEM = Problem(task_id="Flood/0", prompt="def f():\n", entry_point="f",
                        test="def check(candidate):\n    assert candidate() == 1\n", suite="flood")


def test_a_flood_of_instantly_failing_samples_does_not_deadlock() -> None:
    """Over a thousand samples submitted before any reply is read, at a pace (as pytest's own
    work between items sets it) at which the replies (long failure messages) outgrow the
    reply pipe many times over while requests are still being written."""
    samples = 1200  # submitted over 1.5 s at least: some 250 replies (125 KB) come back meanwhile
    runner = SampleRunner(Limits(timeout=3.0), parallel=2, deduplicate=False, isolation="basic")
    outcomes: list[SampleRecord] = []

    def drive() -> None:
        for key in range(samples):
            if key % 4 == 0:
                time.sleep(0.005)
            runner.submit(key, FLOOD_PROBLEM, key, f"    raise ValueError('{key:05d}' + 'x' * 400)\n")
        outcomes.extend(runner.result(key) for key in range(samples))

    worker = threading.Thread(target=drive, daemon=True)
    worker.start()
    worker.join(timeout=240)
    if worker.is_alive():
        process = runner.process
        if process is not None:
            process.kill()  # unblocks the stuck write; the runner then gives up on the rest
        worker.join(timeout=30)
        raise AssertionError("the test process and its fork server deadlocked")
    runner.close()
    assert len(outcomes) == samples
    assert {outcome.verdict for outcome in outcomes} == {Verdict.FAILED}
    assert [outcome.index for outcome in outcomes] == list(range(samples))
    assert all(f"ValueError: {key:05d}xxx" in outcome.message for key, outcome in enumerate(outcomes))


ADD_PROBLEM = Problem(task_id="Add/0", prompt="def add(a, b):\n", entry_point="add",
                      test="def check(candidate):\n    assert candidate(1, 2) == 3\n", suite="add")


def test_identical_completions_run_once_and_share_the_verdict() -> None:
    completions = ["    return a + b\n", "    return a - b\n", "    return a + b\n", None]
    for deduplicate in (True, False):
        runner = SampleRunner(Limits(timeout=3.0), deduplicate=deduplicate, isolation="basic")
        for index, completion in enumerate(completions):
            runner.submit(f"s{index}", ADD_PROBLEM, index, completion)
        records = [runner.result(f"s{index}") for index in range(len(completions))]
        runner.close()
        assert [r.verdict for r in records] == [Verdict.PASSED, Verdict.FAILED, Verdict.PASSED, Verdict.FAILED]
        assert [r.index for r in records] == [0, 1, 2, 3]
        assert [r.shared for r in records] == [False, False, deduplicate, False]
        assert len(runner.executions) == (3 if deduplicate else 4)
        assert "no completion" in records[3].message


def test_recorded_verdicts_are_not_executed_again() -> None:
    recorded = SampleRecord("add", "Add/0", 1, Verdict.TIMEOUT, "timed out", 3.0, resumed=True)
    runner = SampleRunner(Limits(timeout=3.0), isolation="basic", known={recorded.sample_id: recorded})
    runner.submit("s1", ADD_PROBLEM, 1, "    while True: pass\n")
    assert runner.result("s1") == recorded
    assert runner.process is None  # no fork server was needed


def test_a_failing_multiline_assertion_is_quoted_whole() -> None:
    problem = Problem(task_id="Paren/0", prompt="def split(s):\n", entry_point="split", suite="paren",
                      test="def check(candidate):\n    assert candidate('(()) ()') == [\n        '(())',\n"
                           "        '()',\n    ]\n")
    runner = SampleRunner(Limits(timeout=3.0), isolation="basic")
    runner.submit("wrong", problem, 0, "    return []\n")
    record = runner.result("wrong")
    runner.close()
    assert record.verdict is Verdict.FAILED
    assert record.message == "AssertionError (at test line 2: assert candidate('(()) ()') == [ '(())', '()', ])"


SLEEPY_PROBLEM = Problem(task_id="Sleepy/0", prompt="def f():\n", entry_point="f",
                         test="def check(candidate):\n    assert candidate() == 1\n", suite="sleepy")


def test_withdrawn_samples_are_dropped_unstarted_and_sent_again_if_wanted() -> None:
    """While one slot's sample sleeps, another worker takes over the queued problem: the fork
    server drops its samples unstarted, says which, and runs them after all if they are asked
    for here. It says once per problem when the first of its samples starts."""
    started: list[str] = []
    runner = SampleRunner(Limits(timeout=3.0), deduplicate=False, isolation="basic",
                          on_started=lambda problem: started.append(problem.task_id))
    try:
        runner.submit("sleepy", SLEEPY_PROBLEM, 0, "    import time\n    time.sleep(0.05)\n    return 1\n")
        for index in range(5):
            runner.submit(index, ADD_PROBLEM, index, "    return a + b\n")
        runner.withdraw(ADD_PROBLEM)
        assert runner.result("sleepy").verdict is Verdict.PASSED
        time.sleep(0.3)
        runner.submit("sleepy again", SLEEPY_PROBLEM, 1, "    return 1\n")
        assert runner.result("sleepy again").verdict is Verdict.PASSED  # reads the replies that came meanwhile
        assert runner.dropped == {runner.decided_by[index] for index in range(5)}
        assert started == ["Sleepy/0"]
        assert [runner.result(index).verdict for index in range(5)] == [Verdict.PASSED] * 5
        assert not runner.dropped and started == ["Sleepy/0", "Add/0"]
    finally:
        runner.close()


class WeightsKept:
    """A confinement that only records the CPU weights the fork server sets."""

    def __init__(self) -> None:
        self.weights: list[tuple[int, bool]] = []

    def set_cpu_weight(self, slot: int, demoted: bool) -> bool:
        self.weights.append((slot, demoted))
        return True


def test_demoted_samples_get_their_priority_back_once_none_waits() -> None:
    """A long-running sample yields to the samples waiting behind it; once none waits it runs
    at full weight again (HumanEval+'s samples of seconds were left to run last, alone)."""
    from pytest_passk.sandbox import forkserver, wire

    reading, writing = os.pipe()
    confinement = WeightsKept()
    server = forkserver.Server(os.fdopen(reading, "rb"), writing, confinement, parallel=1)
    try:
        long_running, beside = server.slots[:2]
        long_running.set_demoted(confinement, True)
        server.running = {100: long_running, 101: beside}
        server.queue.append(wire.RunSample(7, 0, "    return 1\n", 3.0))
        server.restore_priorities()
        assert long_running.demoted and confinement.weights == [(0, True)]  # a sample still waits
        server.queue.clear()
        server.restore_priorities()
        assert not long_running.demoted and confinement.weights == [(0, True), (0, False)]
        assert not beside.demoted  # never demoted: left as it was
    finally:
        os.close(writing)
        server.requests.close()
        os.rmdir(server.tmproot)


def test_a_slow_honest_sample_among_hanging_ones_on_a_busy_core_passes() -> None:
    """The time a sample waits for a CPU does not count against its timeout, so one that needs
    40% of its timeout in CPU passes (as in the reference evaluator, which gives it a core)
    while hanging samples start beside it, time out, and a stream of fast ones follows, all on
    one core. The last hanging sample to start, once no slot was free, was never demoted: at
    16 times the others' CPU weight it timed this one out (at the 3-timeout cap)."""
    fast, hangs = 300, 3  # the slow sample and the hanging ones fill the four slots
    pinned = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(pinned)})  # inherited by the fork server and its samples
    runner = SampleRunner(Limits(timeout=1.0), parallel=1, deduplicate=False)
    busy = "    return a + b\nimport time\nstart = time.process_time()\nwhile time.process_time() - start < {}:\n    pass\n"
    try:
        runner.submit("slow", ADD_PROBLEM, 0, busy.format(0.4))
        for index in range(hangs):
            runner.submit(("hang", index), ADD_PROBLEM, 1 + index, busy.format("float('inf')"))
        for index in range(fast):
            runner.submit(("fast", index), ADD_PROBLEM, 1 + hangs + index, "    return a + b\n")
        slow = runner.result("slow")
        hanging = [runner.result(("hang", index)).verdict for index in range(hangs)]
        streamed = [runner.result(("fast", index)).verdict for index in range(fast)]
    finally:
        runner.close()
        os.sched_setaffinity(0, pinned)
    assert slow.verdict is Verdict.PASSED, slow.message
    assert hanging == [Verdict.TIMEOUT] * hangs
    assert streamed == [Verdict.PASSED] * fast
