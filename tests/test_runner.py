"""The test process's side of execution, driven directly (no pytest session in between)."""

from __future__ import annotations

import threading
import time

from pytest_passk.sandbox.runner import Limits, Outcome, SampleRunner
from pytest_passk.problems import Problem

FLOOD_PROBLEM = Problem(task_id="Flood/0", prompt="def f():\n", entry_point="f",
                        test="def check(candidate):\n    assert candidate() == 1\n", suite="flood")


def test_a_flood_of_instantly_failing_samples_does_not_deadlock() -> None:
    """Thousands of samples submitted before any reply is read, at a pace (as pytest's own
    work between items sets it) at which the replies (long failure messages) outgrow the
    reply pipe many times over while requests are still being written."""
    samples = 3000
    runner = SampleRunner(Limits(timeout=3.0), parallel=2, deduplicate=False, isolation="basic")
    outcomes: list[Outcome] = []

    def drive() -> None:
        for key in range(samples):
            if key % 10 == 0:
                time.sleep(0.005)
            runner.submit(key, FLOOD_PROBLEM, f"    raise ValueError('{key:05d}' + 'x' * 400)\n")
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
    assert {outcome.verdict for outcome in outcomes} == {"failed"}
    assert all(f"ValueError: {key:05d}xxx" in outcome.message for key, outcome in enumerate(outcomes))
