"""Execution workers on other hosts through xdist's own transport: here two execnet
socket servers on loopback, each in a directory of its own (its "host"), reached
with --tx socket=...; the problems and samples travel with the workers' input, no rsync."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Completions, free_port

execnet = pytest.importorskip("execnet")

@pytest.fixture
def socket_hosts_homes(tmp_path: Path) -> list[Path]:
    return [tmp_path / "host1", tmp_path / "host2"]


@pytest.fixture
def socket_hosts(socket_hosts_homes: list[Path]) -> Iterator[list[str]]:
    """Two execnet socket servers, each started in its own directory; yields their --tx specs."""
    script = Path(execnet.__file__).parent / "script" / "socketserver.py"
    processes, specs = [], []
    try:
        for home in socket_hosts_homes:
            home.mkdir()
            port = free_port()
            processes.append(subprocess.Popen([sys.executable, str(script), f"127.0.0.1:{port}"], cwd=home,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail("execnet's socket server did not start")
                    time.sleep(0.1)
            specs.append(f"socket=127.0.0.1:{port}")
        yield specs
    finally:
        for process in processes:
            process.kill()
            process.wait()


def test_socket_workers_give_the_same_verdicts_as_local_ones(pytester: pytest.Pytester, toy_problems: Path,
                                                             completions_file: Completions,
                                                             socket_hosts: list[str],
                                                             socket_hosts_homes: list[Path]) -> None:
    bodies = ["    return a + b\n", "    return a - b\n", "    while True:\n        pass\n", "    import os\n    os._exit(3)\n",
              "    class Yes:\n        def __eq__(self, other):\n            return True\n    return Yes()\n"]
    path = completions_file([("Toy/0", b) for b in bodies] + [("Toy/1", "    return 2 * x\n"), ("Toy/1", "    return x\n")])
    reports = {}
    pytester.makeini("[pytest]\ntestpaths = problems\n")
    for label, transport in (("local", ["-n", "2"]),
                             ("remote", ["--dist", "load", *(arg for spec in socket_hosts for arg in ("--tx", spec))])):
        reports[label] = pytester.path / f"{label}.json"
        # As the README gives it: no path arguments, no rsync; the samples file in the space form.
        result = pytester.runpytest(*transport, "-p", "no:randomly", "--passk-completions", str(path),
                                    "--passk-timeout=1", "--passk-k=1,2", f"--passk-json={reports[label]}")
        result.assert_outcomes(passed=2, failed=5, skipped=1)
        if label == "remote":  # xdist schedules a problem's samples as one item: 2 problems, Toy/2's skip
            result.stdout.fnmatch_lines(["*2 workers [[]3 items[]]*"])
    local, remote = (json.loads(reports[label].read_text()) for label in ("local", "remote"))

    def verdicts(data: dict[str, list[dict[str, object]]]) -> list[tuple[object, ...]]:
        return [(s["task_id"], s["index"], s["verdict"]) for s in data["samples"]]
    assert verdicts(remote) == verdicts(local)
    assert verdicts(local)[:5] == [("Toy/0", 0, "passed"), ("Toy/0", 1, "failed"), ("Toy/0", 2, "timeout"),
                                   ("Toy/0", 3, "crashed"), ("Toy/0", 4, "suspicious")]
    assert remote["suites"][0]["pass_at_k"] == local["suites"][0]["pass_at_k"]
    assert remote["suites"][0]["verdicts"] == local["suites"][0]["verdicts"]
    # The workers ran in their hosts' directories, with the problem files they were sent placed there.
    for host in socket_hosts_homes:
        assert [p.relative_to(host).as_posix() for p in host.rglob("*.jsonl")] == ["pyexecnetcache/problems/toy.jsonl"]
