"""How many CPUs this process may use: what sizes a run's samples side by side, the
expected outputs' child processes and ``-n auto``'s workers.

``os.cpu_count()`` counts the machine's CPUs. A run confined to fewer (``taskset``, a
SLURM job's CPU set, a container's ``--cpuset-cpus``, a CPU quota such as ``docker
--cpus`` or a Kubernetes limit) that sized itself by that count would run several
samples a core, and each sample's wall-clock time limit would then count its wait.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from .sandbox.isolation import cgroup_paths, read_mounts

__all__ = ["cgroup_cpu_quota", "describe_cpus", "samples_at_once", "usable_cpus"]


def affinity() -> int:
    """The CPUs the scheduler may run this process on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity on this platform
        return os.cpu_count() or 1


def usable_cpus() -> int:
    """The CPUs this process may run on, no more than its cgroups' CPU quota; at least 1."""
    return within_quota(affinity(), cgroup_cpu_quota())


def within_quota(pinned: int, quota: float | None) -> int:
    return max(1, pinned if quota is None else min(pinned, math.ceil(quota)))


def samples_at_once(processes: int, usable: int | None = None) -> int:
    """Samples each of ``processes`` test processes on this machine runs side by side."""
    return max(1, (usable_cpus() if usable is None else usable) // max(1, processes))


def describe_cpus(processes: int) -> str:
    """What the run may use here, and why it is fewer than the machine's CPUs where it is."""
    machine, pinned, quota = os.cpu_count() or 1, affinity(), cgroup_cpu_quota()
    usable = within_quota(pinned, quota)
    limits = [f"CPU affinity: {pinned}"] if pinned < machine else []
    if quota is not None and math.ceil(quota) < machine:
        limits.append(f"cgroup CPU quota: {quota:g}")
    why = f" ({', '.join(limits)})" if usable < machine else ""
    spread = f"each of {processes} test processes" if processes > 1 else "the test process"
    at_once = samples_at_once(processes, usable)
    return f"{usable} of {machine} CPUs usable{why}; {at_once} sample{'s' if at_once > 1 else ''} at once in {spread}"


def cgroup_cpu_quota(memberships: str | None = None,
                     mounts: list[tuple[str, str, set[str], str, str]] | None = None) -> float | None:
    """CPUs' worth of time a period that this process's cgroups allow, the tightest of its
    cgroup and those above it (cgroup v2's ``cpu.max``, v1's ``cpu.cfs_quota_us``); None
    where nothing limits it or nothing can be read. ``memberships`` and ``mounts``: this
    process's ``/proc/self/cgroup`` and mount table, read where not given."""
    try:
        paths = cgroup_paths(memberships)
        mounts = read_mounts() if mounts is None else mounts
    except (OSError, ValueError, IndexError):
        return None
    tightest: float | None = None
    hierarchies = [("", "cgroup2", lambda options: True, read_v2_quota),
                   ("cpu", "cgroup", lambda options: "cpu" in options.split(","), read_v1_quota)]
    for controller, kind, has_controller, read in hierarchies:
        path = paths.get(controller)
        mount = next(((point, root) for point, root, _, fstype, options in mounts
                      if fstype == kind and has_controller(options)), None)
        if path is None or mount is None:
            continue
        point, root = mount
        # The mount shows the hierarchy from ``root`` down (a container's own cgroup, say).
        if not (root == "/" or path == root or path.startswith(root.rstrip("/") + "/")):
            continue  # this process's cgroup is not in what the mount shows
        top = Path(point).resolve()
        directory = (top / os.path.relpath(path, root)).resolve()
        while directory.is_relative_to(top):
            quota = read(directory)
            if quota is not None and (tightest is None or quota < tightest):
                tightest = quota
            if directory == top:
                break
            directory = directory.parent
    return tightest


def read_v2_quota(directory: Path) -> float | None:
    try:
        limit, period = (directory / "cpu.max").read_text().split()
        return None if limit == "max" else int(limit) / int(period)
    except (OSError, ValueError):
        return None


def read_v1_quota(directory: Path) -> float | None:
    try:
        limit = int((directory / "cpu.cfs_quota_us").read_text())
        period = int((directory / "cpu.cfs_period_us").read_text())
        return None if limit <= 0 or period <= 0 else limit / period
    except (OSError, ValueError):
        return None
