"""A run sizes itself by the CPUs it may use (its affinity, its cgroups' CPU quota), not by
the machine's: samples side by side, HumanEval+'s reference processes, ``-n auto``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from pytest_passk import cpus
from pytest_passk.hosts import LOCAL, processes_by_host

from .conftest import Completions, read_report


def cgroup_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_tightest_cpu_max_up_a_v2_hierarchy(tmp_path: Path) -> None:
    tree = cgroup_tree(tmp_path / "unified", {"cpu.max": "max 100000\n", "job/cpu.max": "250000 100000\n",
                                              "job/step/cpu.max": "max 100000\n", "other/cpu.max": "50000 100000\n"})
    mounts = [(str(tree), "/", set(), "cgroup2", "rw")]
    assert cpus.cgroup_cpu_quota("0::/job/step\n", mounts) == 2.5  # the job's, above the process's own
    assert cpus.cgroup_cpu_quota("0::/other\n", mounts) == 0.5
    assert cpus.cgroup_cpu_quota("0::/\n", mounts) is None  # "max": no quota
    assert cpus.cgroup_cpu_quota("0::/missing\n", mounts) is None


def test_a_v1_quota_seen_from_a_container_mount(tmp_path: Path) -> None:
    """A container sees its own cgroup as the mount's root; /proc/self/cgroup names the full path."""
    tree = cgroup_tree(tmp_path / "cpu", {"cpu.cfs_quota_us": "300000\n", "cpu.cfs_period_us": "100000\n",
                                          "inner/cpu.cfs_quota_us": "-1\n", "inner/cpu.cfs_period_us": "100000\n"})
    mounts = [(str(tree), "/docker/abc", set(), "cgroup", "rw,cpu,cpuacct"),
              (str(tmp_path / "memory"), "/docker/abc", set(), "cgroup", "rw,memory")]
    membership = "5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc/inner\n2:cpuacct:/elsewhere\n"
    assert cpus.cgroup_cpu_quota(membership, mounts) == 3.0
    assert cpus.cgroup_cpu_quota("4:cpu,cpuacct:/docker/abcd\n", mounts) is None  # not under the mount's root
    assert cpus.cgroup_cpu_quota("garbage\n", mounts) is None


def test_usable_cpus_take_the_affinity_and_round_a_quota_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    monkeypatch.setattr(cpus, "cgroup_cpu_quota", lambda: None)
    assert cpus.usable_cpus() == 8
    assert cpus.samples_at_once(3) == 2
    assert cpus.describe_cpus(3) == "8 of 64 CPUs usable (CPU affinity: 8); 2 samples at once in each of 3 test processes"
    monkeypatch.setattr(cpus, "cgroup_cpu_quota", lambda: 2.5)
    assert cpus.usable_cpus() == 3
    assert cpus.describe_cpus(1) == ("3 of 64 CPUs usable (CPU affinity: 8, cgroup CPU quota: 2.5); "
                                     "3 samples at once in the test process")
    monkeypatch.setattr(cpus, "cgroup_cpu_quota", lambda: 0.2)
    assert cpus.usable_cpus() == 1
    assert cpus.samples_at_once(4) == 1


@pytest.fixture
def one_cpu() -> Iterator[int]:
    """This test process (and what it starts) pinned to one CPU; the machine's count."""
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no CPU affinity on this platform")
    before = os.sched_getaffinity(0)
    if len(before) < 2:
        pytest.skip("needs two CPUs to pin to one")
    os.sched_setaffinity(0, {min(before)})
    try:
        yield os.cpu_count() or 1
    finally:
        os.sched_setaffinity(0, before)


def test_a_run_pinned_to_one_cpu_sizes_itself_by_it(pytester: pytest.Pytester, toy_problems: Path,
                                                    completions_file: Completions, one_cpu: int,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """``-n auto`` starts one worker (xdist alone counts the machine's CPUs where psutil is
    installed), whose fork server runs one sample at a time; the verdicts are the same."""
    monkeypatch.delenv("PYTEST_XDIST_AUTO_NUM_WORKERS", raising=False)
    path = completions_file([("Toy/0", "    return a + b\n"), ("Toy/0", "    return a - b\n"), ("Toy/1", "    return x * 2\n")])
    report = pytester.path / "report.json"
    result = pytester.runpytest_subprocess("problems", "-n", "auto", f"--passk-completions={path}", f"--passk-json={report}")
    result.stdout.fnmatch_lines([f"passk cpus: 1 of {one_cpu} CPUs usable (CPU affinity: 1); 1 sample at once in the test process",
                                 "created: 1/1 worker*"])
    assert [s["verdict"] for s in read_report(report)["samples"]] == ["passed", "failed", "passed"]  # type: ignore[index]

    monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "2")  # xdist's own override still wins
    again = pytester.runpytest_subprocess("problems", "-n", "auto", f"--passk-completions={path}")
    again.stdout.fnmatch_lines([f"passk cpus: 1 of {one_cpu} CPUs usable (CPU affinity: 1); 1 sample at once in each of 2 test processes",
                                "created: 2/2 workers*"])
    again.assert_outcomes(passed=2, failed=1, skipped=1)  # Toy/2 has neither a completion nor a reference


def test_a_run_of_ordinary_tests_has_no_passk_header(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ordinary="def test_one():\n    assert True\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert not [line for line in result.stdout.lines if line.startswith("passk")]


def test_workers_count_the_workers_of_their_own_machine() -> None:
    """A worker's share of the CPUs is of its own machine's: the workers there, from xdist's specs."""
    specs = ["popen", "popen", "8*socket=host1:8888", "8*socket=host2:8888", "socket=127.0.0.1:9000",
             "2*ssh=me@host1", "popen//via=gw0"]
    assert processes_by_host(specs) == {LOCAL: 3, "host1": 10, "host2": 8, "via=gw0": 1}
    assert processes_by_host(["popen"] * 4) == {LOCAL: 4}  # -n 4, as xdist expands it
