"""Which samples a test process submits ahead (lookahead), without a pytest session."""

from __future__ import annotations

from dataclasses import dataclass

from pytest_passk.lookahead import LOOKAHEAD, Lookahead


@dataclass
class Sample:
    nodeid: str
    group_key: str


def samples(problem: str, count: int) -> list[Sample]:
    return [Sample(f"{problem}[{i}]", problem) for i in range(count)]


def test_in_order_each_sample_once_and_as_far_as_the_window() -> None:
    items = samples("a", LOOKAHEAD + 10)
    lookahead = Lookahead(items)
    first = lookahead.upcoming(items[0], items[1])
    assert first == items[: LOOKAHEAD + 1]  # the item first, then the window; the next item once
    assert lookahead.upcoming(items[1], items[2]) == [items[LOOKAHEAD + 1]]  # only what is new
    handed = first + [items[LOOKAHEAD + 1]]
    for position in range(2, len(items)):
        handed += lookahead.upcoming(items[position], items[position + 1] if position + 1 < len(items) else None)
    assert handed == items  # each once, in order


def test_whole_problems_where_the_schedule_keeps_them_together() -> None:
    a, b = samples("a", 3), samples("b", 2)
    lookahead = Lookahead(groups={"a": a, "b": b})  # a worker that does not know its order
    assert lookahead.upcoming(a[0], a[1]) == a  # the problem it is in, whole
    assert lookahead.upcoming(a[1], a[2]) == []
    assert lookahead.upcoming(a[2], b[0]) == b  # the next item names the next problem
    assert lookahead.upcoming(b[0], b[1]) == []


def test_ungrouped_unknown_items_submit_themselves_and_the_next() -> None:
    a = samples("a", 3)
    lookahead = Lookahead()
    assert lookahead.upcoming(a[0], a[1]) == [a[0], a[1]]
    assert lookahead.upcoming(a[1], a[2]) == [a[2]]
    assert lookahead.upcoming(a[2], None) == []
