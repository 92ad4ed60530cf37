"""Which samples a test process submits ahead of the one it reports.

A sample executes in the fork server while pytest reports the ones before it; to
keep the fork server busy (also while a hanging sample waits out its timeout) a
test process submits samples far ahead, as far as its schedule lets it know them.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Protocol

__all__ = ["LOOKAHEAD", "Lookahead", "Upcoming"]

# Samples submitted ahead of the one running: enough to keep the fork server busy
# while a hanging sample waits out its timeout.
LOOKAHEAD = 2048


class Upcoming(Protocol):
    """What the look-ahead needs of a sample item."""

    nodeid: str

    @property
    def group_key(self) -> Hashable: ...


class Lookahead:
    """What this process knows of the samples it will run next.

    ``items``: what it will run, in order, when the schedule says so (without xdist, the
    whole session; under per-problem scheduling, the samples of the problems dealt to this
    worker). ``groups``: every problem's samples, where the schedule keeps a problem's
    samples on one worker; then the next item names the problem to submit whole.
    """

    def __init__(self, items: Sequence[Upcoming] = (), groups: dict[Hashable, list[Upcoming]] | None = None) -> None:
        self.items = list(items)
        self.position = {item.nodeid: i for i, item in enumerate(self.items)}
        self.groups = groups or {}
        # What was handed out already, so that each call returns only what is new:
        # this runs once per item, and the look-ahead is thousands of items long.
        self.handed: set[str] = set()
        self.handed_groups: set[Hashable] = set()
        self.handed_through = 0

    def upcoming(self, item: Upcoming, nextitem: object) -> list[Upcoming]:
        """The samples to submit now, before ``item`` runs (``item``, or its problem, first);
        none that an earlier call returned."""
        ahead: list[Upcoming] = []
        for anchor in (item, nextitem):
            if not isinstance(anchor, type(item)):
                continue
            if anchor.group_key not in self.groups:
                ahead.append(anchor)
            elif anchor.group_key not in self.handed_groups:
                self.handed_groups.add(anchor.group_key)
                ahead += self.groups[anchor.group_key]
        start = self.position.get(item.nodeid)
        if start is not None:
            end = min(len(self.items), start + 1 + LOOKAHEAD)
            ahead += self.items[max(start + 1, self.handed_through) : end]
            self.handed_through = max(self.handed_through, end)
        fresh = []
        for sample in ahead:
            if sample.nodeid not in self.handed:
                self.handed.add(sample.nodeid)
                fresh.append(sample)
        return fresh
