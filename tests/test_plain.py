"""What crosses between a sample's check and its candidate: plain data, bounded, nothing else."""

from __future__ import annotations

import collections
import decimal
import fractions
import json
import os
import socket
import threading
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


LONG_FLOATS = [0.1 * i for i in range(plain.PACKED)]


@pytest.mark.parametrize("value", [
    LONG_FLOATS, tuple(LONG_FLOATS), set(LONG_FLOATS), frozenset(LONG_FLOATS),
    [1, 3, *LONG_FLOATS], [*LONG_FLOATS, -(1 << 53), 1 << 53],  # ints among them, as HumanEval/130's
    [float("inf"), -0.0, -float("inf"), *LONG_FLOATS], [[*LONG_FLOATS], {"k": (*LONG_FLOATS,)}], {7, *LONG_FLOATS},
], ids=lambda value: f"{type(value).__name__} of {len(value)}")
def test_long_lists_of_floats_cross_packed_unchanged(value: object) -> None:
    tree = plain.Encoder(pack=True).encode(value)
    assert plain.PACKED_TAG in json.dumps(tree)
    back = plain.decode(json.loads(json.dumps(tree)))
    assert type(back) is type(value) and back == value
    if not isinstance(value, (set, frozenset)):  # (whose order is their own)
        assert repr(back) == repr(value)  # every item's type and sign: 1 stays an int, -0.0 negative
    assert plain.decode(plain.unpacked(tree)) == value and plain.PACKED_TAG not in json.dumps(plain.unpacked(tree))


@pytest.mark.parametrize("value", [
    LONG_FLOATS[:-1] + [True], LONG_FLOATS + [(1 << 53) + 1], LONG_FLOATS + ["1.0"], LONG_FLOATS[:8] + list(range(plain.PACKED)),
    LONG_FLOATS[: plain.PACKED - 1],
], ids=["a bool", "an int beyond 2**53", "a str", "mostly ints", "too short"])
def test_lists_that_would_not_cross_exactly_packed_are_spelled_out(value: list[object]) -> None:
    tree = plain.Encoder(pack=True).encode(value)
    assert plain.PACKED_TAG not in json.dumps(tree)
    back = plain.decode(json.loads(json.dumps(tree)))
    assert repr(back) == repr(value)


def test_packing_is_the_same_both_sides_so_logged_questions_match() -> None:
    value = ([1, 2, *LONG_FLOATS], 3)
    assert plain.Encoder(pack=True).encode(value) == plain.Encoder(pack=True).encode(value)


@pytest.mark.parametrize("value", PLAIN_VALUES, ids=repr)
def test_a_call_is_keyed_alike_on_both_sides(value: object) -> None:
    """The judge finds the candidate's logged answer by the call's key: the same for the same
    arguments, whichever side of the wall they were made on."""
    crossed = plain.decode(json.loads(json.dumps(plain.Encoder(pack=True).encode(value))))
    key = plain.call_key("f", (value, [value]), {"x": value})
    assert key is not None and key == plain.call_key("f", (crossed, [crossed]), {"x": crossed})


def test_call_keys_tell_apart_what_equality_does_not() -> None:
    calls = [("f", (1,), {}), ("f", (1.0,), {}), ("f", (True,), {}), ("f", (0.0,), {}), ("f", (-0.0,), {}),
             ("f", ([1],), {}), ("f", ((1,),), {}), ("f", ("1",), {}), ("f", (b"1",), {}), ("g", (1,), {}),
             ("f", (), {"x": 1}), ("f", ({1: 2},), {}), ("f", ({1.0: 2},), {}), ("f", (1 << 5000,), {}),
             ("f", ((1 << 5000) + 1,), {})]
    keys = [plain.call_key(*call) for call in calls]
    assert None not in keys and len(set(keys)) == len(keys)


def test_a_subclass_is_keyed_by_its_data_and_runs_no_code_of_its_own() -> None:
    """A list of the completion's is keyed as it crosses (its plain base): its own repr, which
    could do anything in the candidate's process, is never called."""

    class Loud(list):  # type: ignore[type-arg]
        def __repr__(self) -> str:
            raise AssertionError("the completion's repr ran")

    assert plain.call_key("f", (Loud([1, 2]),), {}) == plain.call_key("f", (Loud([1, 2]),), {}) is not None
    assert plain.call_key("f", ([Loud([1])],), {}) != plain.call_key("f", ([Loud([2])],), {})


@pytest.mark.parametrize("value", [lambda: 0, object(), [print]], ids=["lambda", "object", "list-of-builtin"])
def test_calls_with_arguments_that_cannot_cross_have_no_key(value: object) -> None:
    assert plain.call_key("f", (value,), {}) is None


def test_packed_lists_are_read_as_their_doubles_and_ints() -> None:
    one = "AAAAAAAA8D8="  # the double 1.0
    assert repr(plain.decode(["#", "l", one, []])) == "[1.0]"
    assert repr(plain.decode(["#", "t", one, [0]])) == "(1,)"


@pytest.mark.parametrize("tree", [
    ["#", "l", "AAAAAAAA4D8=", [0]],  # 0.5 said to be an int
    ["#", "l", "AAAA", []],  # not a whole double
    ["#", "x", "AAAAAAAA8D8=", []], ["#", "l", "AAAAAAAA8D8=", [1]], ["#", "l", "AAAAAAAA8D8=", [-1]],
    ["#", "l", "AAAAAAAA8D8=", "0"], ["#", "l", ["AAAAAAAA8D8="], []], ["#", "l", "AAAAAAAA8D8="],
], ids=repr)
def test_packed_lists_are_checked_as_they_are_read(tree: list[object]) -> None:
    with pytest.raises(plain.Malformed):
        plain.decode(tree)


def test_a_message_too_large_packed_is_sent_spelled_out() -> None:
    small = [0.5] * (plain.LIMIT // 10)  # "0.5," is 4 bytes a float in JSON, 10.7 packed
    reading, writing = os.pipe()
    try:
        channel = plain.Channel(reading, writing)
        received: list[object] = []
        reader = threading.Thread(target=lambda: received.append(channel.receive()))
        reader.start()
        message = ["return", plain.Encoder(pack=True).encode(small)]
        assert len(json.dumps(message)) > plain.LIMIT
        channel.send(message)
        reader.join()
        assert received[0][0] == "return" and plain.decode(received[0][1]) == small  # type: ignore[index]
    finally:
        os.close(reading)
        os.close(writing)


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
