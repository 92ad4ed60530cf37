"""Plain data across the sandbox's wall (stdlib only: the fork server imports it before it forks).

A sample's check runs in a trusted process and the candidate in the sandboxed
one (see :mod:`pytest_passk.sandbox.judge`); what crosses between them is plain
data only: None, bool, int, float, complex, str, bytes, and lists, tuples, sets,
frozensets and dicts of them. Encoded as JSON in which every container is an
array whose first element names its type, so a decoder builds nothing but those
types (no pickle: a reader never runs code it is sent), and every frame is
bounded in size. Between the judge and the candidate a long list of floats (ints
among them) crosses *packed*, as the base64 of its doubles: HumanEval+'s outputs
hold millions, which JSON writes and reads at a few seconds each way. A message
that does not fit packed (small floats take more room so) is sent spelled out.

The candidate's side is lenient where the reference evaluator would have
compared equal anyway: a subclass of a plain type (``OrderedDict``, a
``namedtuple``, ``numpy.float64``) crosses as its plain base, and a numpy scalar
as the Python number it holds. Anything else (a class of the completion's, a
generator, a function) is :class:`NotPlain`.
"""

from __future__ import annotations

import array
import binascii
import contextlib
import decimal
import fractions
import hashlib
import json
import json.encoder
import marshal
import os
import select
import struct
from typing import Any, Callable

__all__ = ["LIMIT", "NotPlain", "TooLarge", "Malformed", "Encoder", "decode", "call_key", "Channel"]

LIMIT = 16 << 20  # bytes in one frame: far above any HumanEval result, far below a sandbox's memory
DEPTH = 100  # nesting of containers
HEADER = struct.Struct(">I")
PLAIN_SCALARS = (type(None), bool, int, float, str)
CONTAINERS = {list: "l", tuple: "t", set: "s", frozenset: "f"}
BASES = (bool, int, float, complex, str, bytes, bytearray, list, tuple, dict, set, frozenset)
BIG_INT = 1 << 4000  # beyond this an int crosses in hexadecimal (Python caps int<->str conversion)
# Flat containers of these cross in one step (HumanEval+'s inputs and outputs are lists of thousands).
FLAT = frozenset({type(None), bool, float, str})
SCALARS = frozenset(PLAIN_SCALARS)
NUMBERS = frozenset({int, float})
PACKED = 64  # a list of at least this many floats crosses packed (see the module's docstring)
EXACT = 1 << 53  # every int up to this is a double exactly
SEPARATORS = (",", ":")
# A packed list's tag: not an identifier, so no name that heads a list in a message (a
# function's, an exception class's) reads as one.
PACKED_TAG = "#"
TAGGED = {tag: kind for kind, tag in CONTAINERS.items()}


def _not_serializable(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _compact_encoder() -> Callable[[Any], str]:
    """Compact JSON without ``JSONEncoder.encode``'s per-call set-up (a new C encoder each call,
    a third of the time of a log entry's encoding): json's C encoder, made once. Trees are built
    fresh and are never circular, so it keeps no markers. Where json has no C encoder, a
    ``JSONEncoder`` made once (``json.dumps`` with separators makes one each call)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return json.JSONEncoder(separators=SEPARATORS).encode
    item_separator, key_separator = SEPARATORS
    encode = make(None, _not_serializable, json.encoder.encode_basestring_ascii, None, key_separator, item_separator,
                  False, False, True)
    return lambda value: "".join(encode(value, 0))


compact = _compact_encoder()


class NotPlain(Exception):
    """A value that can't cross: its description says what it was."""


class TooLarge(NotPlain):
    """A value over the bound on what crosses."""


class Malformed(Exception):
    """A frame or value that is not what the protocol allows."""


class Encoder:
    """Turns values into the tagged JSON tree. ``functions`` (the trusted side only):
    how a callable argument crosses, as a reference the other side calls back through.
    ``made_by_completion`` (the candidate's side only) tells a class of the completion's;
    ``converted`` collects the names of those whose instances crossed as their plain
    base, for the verdict's reasons."""

    def __init__(self, functions: Callable[[Any], int] | None = None,
                 made_by_completion: Callable[[type], bool] | None = None, pack: bool = False) -> None:
        self.functions = functions
        self.made_by_completion = made_by_completion
        self.pack = pack  # long lists of floats packed (both sides of the sandbox's wall)
        self.converted: list[str] = []

    def encode(self, value: Any) -> Any:
        """``value`` as a tagged tree; :class:`NotPlain` if it can't cross."""
        try:
            return self.tree(value, 0)
        except RecursionError:
            raise NotPlain(f"containers nested more than {DEPTH} deep") from None

    def tree(self, value: Any, depth: int) -> Any:
        kind = type(value)
        if kind in PLAIN_SCALARS:
            if kind is int and not -BIG_INT < value < BIG_INT:
                return ["i", hex(value)]
            return value
        if depth > DEPTH:
            raise NotPlain(f"containers nested more than {DEPTH} deep")
        tag = CONTAINERS.get(kind)
        if tag is not None:
            if len(value) > 8:
                node = flat_tree(value, tag, self.pack)
                if node is not None:
                    return node
            return [tag, *(self.tree(item, depth + 1) for item in value)]
        if kind is dict:
            items = ["d"]
            for key, item in value.items():
                items += (self.tree(key, depth + 1), self.tree(item, depth + 1))
            return items
        if kind is complex:
            return ["c", value.real, value.imag]
        if kind is bytes or kind is bytearray:
            return ["b" if kind is bytes else "B", value.decode("latin-1")]
        if kind is fractions.Fraction:
            return ["F", self.tree(value.numerator, depth), self.tree(value.denominator, depth)]
        if kind is decimal.Decimal:
            return ["D", str(value)]
        return self.other(value, kind, depth)

    def other(self, value: Any, kind: type, depth: int) -> Any:
        if self.functions is not None and callable(value):
            return ["fn", self.functions(value)]
        if kind.__module__ == "numpy" and getattr(value, "shape", None) == () and hasattr(value, "item"):
            return self.tree(value.item(), depth)  # a numpy scalar: the number it holds
        base = next((base for base in BASES if isinstance(value, base)), None)
        if base is None:
            raise NotPlain(f"a {describe_type(kind)}")
        if self.made_by_completion is not None and self.made_by_completion(kind):
            self.converted.append(kind.__name__)
        # The base type's own methods read the data, whatever the subclass overrides.
        if base in (list, tuple, set, frozenset):
            return [CONTAINERS[base], *(self.tree(item, depth + 1) for item in base.__iter__(value))]
        if base is dict:
            return self.tree({key: dict.__getitem__(value, key) for key in dict.__iter__(value)}, depth)
        plain = {bool: bool, int: int.__int__, float: float.__float__, complex: lambda v: complex(v.real, v.imag),
                 str: str.__str__, bytes: bytes, bytearray: bytearray}[base](value)
        if type(plain) is not base:
            raise NotPlain(f"a {describe_type(kind)}")
        return self.tree(plain, depth)


def flat_tree(items: Any, tag: str, pack: bool) -> list[Any] | None:
    """The tree of a container of scalars (no int beyond :data:`BIG_INT`), packed where it
    may be; None for any other. Read at C speed, where a tree per item costs a Python call."""
    kinds = set(map(type, items))
    if not kinds <= SCALARS:
        return None
    if pack and float in kinds and kinds <= NUMBERS and len(items) >= PACKED:
        node = packed(items, tag, int in kinds)
        if node is not None:
            return node
    if not kinds <= FLAT:
        ints = items if kinds <= {int, bool} else [item for item in items if type(item) is int]
        if not (-BIG_INT < min(ints) and max(ints) < BIG_INT):
            return None
    return [tag, *items]


def packed(items: Any, tag: str, with_ints: bool) -> list[Any] | None:
    """``["#", tag, base64 of the doubles, positions of the ints]``; None where an int is
    beyond :data:`EXACT` or ints are so many that the positions take more room than they save."""
    positions: list[int] = []
    if with_ints:
        items = items if type(items) in (list, tuple) else list(items)  # a set's order, as it iterates
        types = list(map(type, items))
        with contextlib.suppress(ValueError):  # found at C speed: ints among floats are few, or not packed
            while len(positions) * 8 <= len(items):
                positions.append(types.index(int, positions[-1] + 1 if positions else 0))
        if len(positions) * 8 > len(items):
            return None
        ints = [items[position] for position in positions]
        if min(ints) < -EXACT or max(ints) > EXACT:
            return None
    return [PACKED_TAG, tag, binascii.b2a_base64(array.array("d", items), newline=False).decode("ascii"), positions]


def to_json(message: Any, bound: int = LIMIT) -> str:
    """A message (or a log's entry) as compact JSON; spelled out where packed it is longer than
    ``bound`` characters (ASCII: its length is its size), since small floats take more room packed."""
    text = compact(message)
    return compact(unpacked(message)) if len(text) > bound else text


def unpacked(value: Any) -> Any:
    """A message (or any part of one) with its packed lists spelled out as JSON numbers."""
    if type(value) is not list or set(map(type, value)) <= SCALARS:
        return value
    if len(value) == 4 and value[0] == PACKED_TAG and type(value[3]) is list:
        return [value[1], *unpacked_numbers(value[2], value[3])]
    return [unpacked(item) for item in value]


def unpacked_numbers(text: Any, positions: Any) -> list[Any]:
    """The numbers a packed list holds."""
    if type(text) is not str or type(positions) is not list:
        raise Malformed("a packed list that is not text and positions")
    block = array.array("d")
    block.frombytes(binascii.a2b_base64(text))
    numbers: list[Any] = block.tolist()
    for position in positions:
        number = numbers[position] if type(position) is int and position >= 0 else None
        if type(number) is not float or not number.is_integer() or abs(number) > EXACT:
            raise Malformed("a packed list with an int that is not one")
        numbers[position] = int(number)
    return numbers


# Types written by marshal as themselves (an int, a float's bits, a tuple apart from a list; no
# subclass, no bytes-like object written as bytes): a call whose arguments hold nothing else is
# keyed by their marshal.
BUILTIN_SCALARS = frozenset({type(None), bool, int, float, str, bytes, complex})
BUILTIN_CONTAINERS = frozenset({list, tuple, set, frozenset})
KEY_ENCODER = Encoder(pack=True)  # both sides key alike: no callbacks, no classes of the completion's noted


def call_key(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """What a call is logged under, and looked up by, on both sides of the wall: a digest of
    its name and arguments, as ``marshal`` (version 2: no back-references, which depend on
    reference counts) writes them where they are builtin plain data (at C speed, and stricter
    than ``==``: 1, 1.0 and True differ, so do 0.0 and -0.0), else as their tree (a subclass
    as its plain base, as it crosses). None for arguments that can't cross: such a call is not
    logged, and asked live. Equal keys mean the same question; a question keyed otherwise on
    the other side (a set in another order) is asked live, never answered wrongly. A digest,
    not the arguments themselves: the log carries a key for every call, and the arguments
    would be most of its size."""
    try:
        if is_builtin_plain(args, 0) and (not kwargs or is_builtin_plain(kwargs, 0)):
            return "m" + hashlib.blake2b(marshal.dumps((name, args, kwargs), 2), digest_size=16).hexdigest()
    except (ValueError, RecursionError):  # ValueError: nested past marshal's depth
        pass
    try:
        text = compact([name, KEY_ENCODER.encode(args), KEY_ENCODER.encode(kwargs)])
    except (NotPlain, ValueError, RecursionError):
        return None
    return "t" + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def is_builtin_plain(value: Any, depth: int) -> bool:
    """Whether ``value`` is builtin plain data only (no subclass, so nothing of the completion's
    runs, and no bytes-like object that marshal would write as bytes); a flat container within
    it in one step (a call's arguments holding a list of scalars, what nearly every call is made with)."""
    kind = type(value)
    if kind in BUILTIN_SCALARS:
        return True
    if depth > DEPTH:
        return False
    if kind in BUILTIN_CONTAINERS:
        items = value
    elif kind is dict:
        items = (*value, *value.values())
    else:
        return False
    for item in items:
        kind = type(item)
        if not (kind in BUILTIN_SCALARS or (kind in BUILTIN_CONTAINERS and set(map(type, item)) <= BUILTIN_SCALARS)
                or is_builtin_plain(item, depth + 1)):
            return False
    return True


def describe_type(kind: type) -> str:
    module = kind.__module__
    return kind.__qualname__ if module in ("builtins", "__main__", None) else f"{module}.{kind.__qualname__}"


def decode(tree: Any, functions: Callable[[int], Any] | None = None) -> Any:
    """The value a tagged tree stands for; :class:`Malformed` for anything else.
    ``functions`` (the candidate's side only): the callable a reference stands for."""
    try:
        return build(tree, functions, 0)
    except (TypeError, ValueError, IndexError, KeyError, OverflowError, RecursionError, ArithmeticError) as exc:
        raise Malformed(f"{type(exc).__name__}: {exc}") from None


def build(tree: Any, functions: Callable[[int], Any] | None, depth: int) -> Any:
    kind = type(tree)
    if kind in PLAIN_SCALARS:
        return tree
    if kind is not list or not tree or type(tree[0]) is not str or depth > DEPTH + 1:
        raise Malformed("not a tagged value")
    tag, rest = tree[0], tree[1:]
    container = TAGGED.get(tag)
    if container is not None:
        if set(map(type, rest)) <= SCALARS:
            return container(rest)
        return container([build(item, functions, depth + 1) for item in rest])
    if tag == PACKED_TAG:
        tag, text, positions = rest
        return TAGGED[tag](unpacked_numbers(text, positions))
    if tag == "d":
        if len(rest) % 2:
            raise Malformed("a dict of odd length")
        values = [build(item, functions, depth + 1) for item in rest]
        return dict(zip(values[::2], values[1::2]))
    if tag == "c":
        real, imag = rest
        return complex(float(real), float(imag))
    if tag in ("b", "B"):
        (text,) = rest
        return (bytes if tag == "b" else bytearray)(str(text).encode("latin-1"))
    if tag == "i":
        (text,) = rest
        return int(str(text), 16)
    if tag == "F":
        numerator, denominator = (build(item, functions, depth + 1) for item in rest)
        return fractions.Fraction(int(numerator), int(denominator))
    if tag == "D":
        (text,) = rest
        return decimal.Decimal(str(text))
    if tag == "fn" and functions is not None:
        (reference,) = rest
        return functions(int(reference))
    raise Malformed(f"unknown tag {tag!r}")


class Channel:
    """Length-prefixed frames, read from one descriptor and written to another (a pipe's
    ends: the fewest system calls a round trip can take). A frame longer than
    :data:`LIMIT` is never read: :class:`Malformed`."""

    def __init__(self, reading: int, writing: int, remaining: Callable[[], float] | None = None,
                 expired: type[BaseException] = TimeoutError) -> None:
        self.reading, self.writing = reading, writing
        self.read, self.write = os.read, os.write  # bound before a completion can patch them
        self.buffer = bytearray()  # grows in place: a frame of megabytes arrives in 64 KiB reads
        # Seconds left to wait (asked again whenever a wait ends); at none left, waiting raises ``expired``.
        self.remaining, self.expired = remaining, expired

    def send(self, message: list[Any]) -> None:
        """Write one message, spelled out if it is over the bound packed; :class:`NotPlain`
        (nothing written) if it is over the bound still."""
        self.send_json(to_json(message))

    def send_json(self, text: str) -> None:
        """Write one message encoded already (parts of it may have been encoded apart)."""
        data = text.encode()
        if len(data) > LIMIT:
            raise TooLarge(f"{len(data):,} bytes encoded, over the {LIMIT >> 20} MiB bound on what crosses")
        frame = HEADER.pack(len(data)) + data
        while frame:
            frame = frame[self.write(self.writing, frame):]

    def request(self, message: list[Any], serve: Callable[[list[Any]], None]) -> list[Any]:
        """Send ``message``; return the reply, serving the calls the other side makes meanwhile
        (a callback the test handed the candidate, and what that callback calls in turn)."""
        self.send(message)
        while True:
            reply = self.receive()
            if reply[0] != "call":
                return reply
            serve(reply)

    def receive(self) -> list[Any]:
        """The next message; EOFError when the other side closed its end."""
        data = self.frame()
        try:
            message = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise Malformed(f"not JSON ({exc})") from None
        if type(message) is not list or not message or type(message[0]) is not str:
            raise Malformed("not a message")
        return message

    def frame(self) -> bytearray:
        """The next frame's bytes, unread."""
        self.fill(HEADER.size)
        (size,) = HEADER.unpack_from(self.buffer)
        if size > LIMIT:
            raise Malformed(f"a frame of {size:,} bytes, over the {LIMIT >> 20} MiB bound")
        end = HEADER.size + size
        self.fill(end)
        data, self.buffer = self.buffer[HEADER.size:end], self.buffer[end:]
        return data

    def fill(self, size: int) -> None:
        while len(self.buffer) < size:
            while self.remaining is not None and not select.select([self.reading], [], [], max(self.remaining(), 0))[0]:
                if self.remaining() <= 0:
                    raise self.expired("Timed out!")
            chunk = self.read(self.reading, max(size - len(self.buffer), 1 << 16))
            if not chunk:
                raise EOFError
            self.buffer += chunk
