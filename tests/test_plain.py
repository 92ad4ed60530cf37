"""What crosses between a sample's check and its candidate: plain data, bounded, nothing else."""

from __future__ import annotations

import collections
import decimal
import fractions
import json
import os
import socket
import time

import pytest

from pytest_passk.sandbox import plain

PLAIN_VALUES = [
    None, True, False, 0, -7, 1 << 5000, -(1 << 5000), 1.5, -0.0, float("inf"), 2 + 3j, "", "héllo\n", b"\x00\xffab",
    bytearray(b"xy"), [1, [2, [3]]], (1, (2,)), (), {1, 2}, frozenset({"a"}), {"a": 1, 2: [3], (4, 5): {6}},
    fractions.Fraction(1, 3), decimal.Decimal("1.10"),
]


@pytest.mark.parametrize("value", PLAIN_VALUES, ids=repr)
def test_plain_values_cross_unchanged(value: object) -> None:
    tree = json.loads(json.dumps(plain.Encoder().encode(value)))
    back = plain.decode(tree)
    assert type(back) is type(value)
    assert back == value
    if isinstance(value, float):
        assert repr(back) == repr(value)  # -0.0 stays negative


def test_nan_crosses() -> None:
    back = plain.decode(json.loads(json.dumps(plain.Encoder().encode(float("nan")))))
    assert back != back


def test_subclasses_of_plain_types_cross_as_their_base() -> None:
    point = collections.namedtuple("point", "x y")(1, 2)
    for value, expected in [(collections.OrderedDict(a=1), {"a": 1}), (collections.Counter("aab"), {"a": 2, "b": 1}),
                            (point, (1, 2)), (collections.defaultdict(list, k=[1]), {"k": [1]})]:
        back = plain.decode(plain.Encoder().encode(value))
        assert type(back) is type(expected) and back == expected


def test_a_subclass_reads_as_its_data_not_its_overrides() -> None:
    class Liar(list):  # type: ignore[type-arg]
        def __iter__(self):  # type: ignore[no-untyped-def]
            return iter([42])

        def __eq__(self, other: object) -> bool:
            return True

    encoder = plain.Encoder(made_by_completion=lambda kind: kind is Liar)
    assert plain.decode(encoder.encode(Liar([1, 2]))) == [1, 2]
    assert encoder.converted == ["Liar"]


@pytest.mark.parametrize("value, described", [
    ((x for x in []), "generator"), (len, "builtin_function_or_method"), (object(), "object"),
    (range(3), "range"), ({}.keys(), "dict_keys"), (socket, "module"),
])
def test_other_values_do_not_cross(value: object, described: str) -> None:
    with pytest.raises(plain.NotPlain, match=described):
        plain.Encoder().encode(value)


def test_deep_nesting_does_not_cross() -> None:
    value: list[object] = []
    for _ in range(plain.DEPTH + 5):
        value = [value]
    with pytest.raises(plain.NotPlain, match="nested"):
        plain.Encoder().encode(value)


def test_numpy_scalars_cross_as_python_numbers() -> None:
    numpy = pytest.importorskip("numpy")
    for value, expected in [(numpy.int64(3), 3), (numpy.float32(0.5), 0.5), (numpy.bool_(True), True)]:
        back = plain.decode(plain.Encoder().encode(value))
        assert back == expected and type(back) is type(expected)
    with pytest.raises(plain.NotPlain):
        plain.Encoder().encode(numpy.array([1, 2]))  # compares elementwise: not a number


@pytest.mark.parametrize("tree", [["x", 1], [], [1, 2], ["d", 1], ["s", ["l"]], ["fn", 0], {"a": 1}, ["c", "a", 1]],
                         ids=repr)
def test_malformed_trees_are_refused(tree: object) -> None:
    with pytest.raises(plain.Malformed):
        plain.decode(tree)


def test_a_frame_over_the_bound_is_never_read() -> None:
    reading, writing = os.pipe()
    try:
        os.write(writing, plain.HEADER.pack(plain.LIMIT + 1) + b"[]")
        with pytest.raises(plain.Malformed, match="over the 16 MiB bound"):
            plain.Channel(reading, writing).receive()
        with pytest.raises(plain.TooLarge):
            plain.Channel(reading, writing).send(["return", "x" * (plain.LIMIT + 1)])
    finally:
        os.close(reading)
        os.close(writing)


def test_waiting_past_the_deadline_raises() -> None:
    reading, writing = os.pipe()
    try:
        with pytest.raises(TimeoutError):
            end = time.monotonic() + 0.05
            plain.Channel(reading, writing, remaining=lambda: end - time.monotonic()).receive()
    finally:
        os.close(reading)
        os.close(writing)
