"""Run a command inside a confinement made before it starts, for tests whose
samples fork-bomb, kill and exhaust memory: should the sandbox under test fail,
the confinement fails the test instead of taking the machine down.

A new PID namespace (``unshare --pid --fork --mount-proc --kill-child``), an
address-space limit (``prlimit --as``), and a process and memory limit on the
whole tree: a pids and a memory cgroup of its own (v1, made here and removed
afterwards) under root, which ignores ``RLIMIT_NPROC``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PROCESSES = 600
MEMORY = 8 << 30
ADDRESS_SPACE = 8 << 30


def own_cgroup(controller: str) -> Path | None:
    """This process's v1 cgroup of ``controller``, if the hierarchy is mounted where systemd puts it."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            directory = Path("/sys/fs/cgroup") / controller / path.lstrip("/")
            return directory if (directory / "cgroup.procs").exists() else None
    return None


@contextlib.contextmanager
def confinement() -> Iterator[list[str]]:
    """Yields the command prefix that confines what follows it; skips the test where it can't."""
    if os.geteuid() != 0:
        pytest.skip("confining hostile samples needs root here (unshare, cgroups)")
    for tool in ("unshare", "prlimit", "sh"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    groups = []
    try:
        for controller, limits in (("pids", {"pids.max": PROCESSES}), ("memory", {"memory.limit_in_bytes": MEMORY})):
            parent = own_cgroup(controller)
            if parent is None:
                pytest.skip(f"no writable cgroup v1 {controller} hierarchy to confine the test in")
            group = parent / f"passk-test-{uuid.uuid4().hex[:12]}"
            group.mkdir()
            groups.append(group)
            for name, value in limits.items():
                (group / name).write_text(str(value))
        joins = "; ".join(f"echo $$ > {group}/cgroup.procs" for group in groups)
        yield ["sh", "-c", f'{joins} && exec "$@"', "confine",
               "unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
               "prlimit", f"--as={ADDRESS_SPACE}", "--"]
    finally:
        for group in groups:
            remove_cgroup(group)


def remove_cgroup(group: Path) -> None:
    """Remove the group once its processes are gone (the PID namespace ends them with its first process)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            group.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            for pid in (group / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):
                    os.kill(int(pid), 9)
            time.sleep(0.05)
