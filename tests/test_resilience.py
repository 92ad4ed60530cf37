"""The run survives and loses nothing: interrupted runs resume, dead workers are harness errors."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import Completions

SLOW_RIGHT = "    import time\n    time.sleep(0.15)\n    return a + b\n"
SLOW_WRONG = "    import time\n    time.sleep(0.15)\n    return a - b\n"


def slow_samples(count: int) -> list[tuple[str, str | None]]:
    # Distinct texts (a trailing comment), so that none shares another's verdict.
    return [("Toy/0", (SLOW_RIGHT if i % 3 else SLOW_WRONG) + f"    # {i}\n") for i in range(count)]


def summary_of(report: Path) -> tuple[object, dict[tuple[str, int], str]]:
    data = json.loads(report.read_text())
    return data["suites"], {(s["task_id"], s["index"]): s["verdict"] for s in data["samples"]}


def test_killed_run_resumes_to_the_same_summary(pytester: pytest.Pytester, toy_problems: Path,
                                                completions_file: Completions) -> None:
    path = completions_file(slow_samples(40))
    journal = pytester.path / ".passk" / "verdicts.jsonl"
    command = [sys.executable, "-m", "pytest", "problems", "-p", "no:randomly", "-p", "no:cacheprovider",
               f"--passk-completions={path}", "--passk-k=1,5"]
    interrupted = subprocess.Popen(command, cwd=pytester.path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not journal.exists() or journal.read_text().count("\n") < 10):
        time.sleep(0.05)
    interrupted.send_signal(signal.SIGKILL)
    interrupted.wait()
    recorded = journal.read_text().count("\n")
    assert 10 <= recorded < 40, recorded

    resumed_report = pytester.path / "resumed.json"
    # Resumed under xdist: the recorded verdicts travel to the workers with the run.
    result = pytester.runpytest("problems", "-n", "2", "-p", "no:randomly", f"--passk-completions={path}",
                                "--passk-k=1,5", "--passk-resume", f"--passk-json={resumed_report}")
    result.stdout.fnmatch_lines([f"passk: resuming, {recorded} verdicts recorded by an earlier run"])
    samples = json.loads(resumed_report.read_text())["samples"]
    assert sum(s["resumed"] for s in samples) == recorded

    fresh_report = pytester.path / "fresh.json"
    pytester.runpytest("problems", "-p", "no:randomly", f"--passk-completions={path}", "--passk-k=1,5",
                       f"--passk-json={fresh_report}")
    assert not any(s["resumed"] for s in json.loads(fresh_report.read_text())["samples"])
    assert summary_of(resumed_report) == summary_of(fresh_report)
    suites, verdicts = summary_of(fresh_report)
    assert list(verdicts.values()).count("passed") == 26  # i % 3 != 0 for 26 of 0..39


def test_dead_worker_is_a_harness_error_and_loses_no_verdict(pytester: pytest.Pytester, toy_problems: Path,
                                                             completions_file: Completions) -> None:
    path = completions_file(slow_samples(12))
    # Under xdist a worker runs a problem's samples as one item: it dies while running Toy/0's.
    pytester.makeconftest(
        """
        import os
        import pytest

        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_protocol(item):
            flag = item.config.rootpath / "worker-killed"
            if hasattr(item.config, "workerinput") and item.name.startswith("Toy/0[") and not flag.exists():
                flag.write_text(item.config.workerinput["workerid"])
                os._exit(1)
            return (yield)
        """
    )
    report = pytester.path / "report.json"
    result = pytester.runpytest("problems", "-n", "2", "-p", "no:randomly", f"--passk-completions={path}",
                                "--passk-k=1", f"--passk-json={report}")
    assert (pytester.path / "worker-killed").exists()
    result.stdout.fnmatch_lines(["*harness error: gw* died while running problems/toy.jsonl::Toy/0?12 samples?*"])
    outcomes = result.parseoutcomes()
    assert outcomes["errors"] == 1 if "errors" in outcomes else outcomes["error"] == 1
    _, verdicts = summary_of(report)
    assert len(verdicts) == 12  # every sample has its verdict: the problem ran again on another worker
    assert [verdicts[("Toy/0", i)] for i in range(12)] == ["failed" if i % 3 == 0 else "passed" for i in range(12)]
    assert result.ret == pytest.ExitCode.TESTS_FAILED
