"""Which of a run's xdist workers share a machine.

Each worker runs samples on its share of its own machine's CPUs, so it needs the
number of workers on that machine, not in the run: with ``--tx 8*socket=host1:8888
--tx 8*socket=host2:8888`` each of 16-core host1's eight workers runs two samples at
once, where counting all sixteen workers gave one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

__all__ = ["LOCAL", "host_of", "processes_by_host"]

LOCAL = "this machine"
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def host_of(spec: Any) -> str:
    """The machine an execnet spec's worker runs on: this one for ``popen`` (and a socket on
    the loopback), else the host of its ``socket=HOST:PORT`` or ``ssh=[USER@]HOST``; a
    ``popen//via=ID`` worker runs where gateway ``ID`` does, named by that id."""
    if getattr(spec, "via", None):
        return f"via={spec.via}"
    if getattr(spec, "socket", None):
        host = str(spec.socket).rpartition(":")[0] or str(spec.socket)
        return LOCAL if host in LOOPBACK or host.startswith("127.") else host
    if getattr(spec, "ssh", None):
        return str(spec.ssh).rpartition("@")[2]
    return LOCAL


def processes_by_host(specs: Iterable[str]) -> Counter[str]:
    """How many workers each machine runs, from xdist's ``--tx`` specs (``-n 4`` is four
    ``popen``; ``8*socket=...`` is eight, as xdist expands it)."""
    import execnet  # xdist's own transport: present wherever there are specs to read

    counts: Counter[str] = Counter()
    for text in specs:
        times, star, spec = text.partition("*")
        if not (star and times.isdigit()):
            times, spec = "1", text
        counts[host_of(execnet.XSpec(spec))] += int(times)
    return counts
