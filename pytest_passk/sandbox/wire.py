"""The fork server's wire protocol (stdlib only: the fork server imports it before it forks).

A frame is a 4-byte big-endian length, then one JSON object whose ``kind`` names the
message; the rest are its fields. JSON, not pickle: a reader never runs code it is sent.

Requests, test process -> fork server:

* ``problem`` ``{id, prompt, test, entry_point, data}``: compile the problem's test once (``data``:
  what it reads as ``PASSK_DATA``, carried beside its source: see :class:`program.ProblemCode`);
* ``sample`` ``{id, problem, completion, timeout}``: run one sample of problem ``problem``;
* ``drop`` ``{problem}``: another process runs that problem's samples: forget those not started.

Replies, fork server -> test process:

* ``ready`` ``{layers, hidden, entry_error}``: first, once: the isolation in force
  (layer -> "" or why not), the import paths a sample could not see (path -> layer),
  and why no sample can start at all ("" when one can);
* ``verdict`` ``{id, verdict, message, seconds}``: sample ``id``'s verdict, in any order;
* ``started`` ``{problem}``: the first of problem ``problem``'s samples has started;
* ``dropped`` ``{id}``: sample ``id`` was forgotten unstarted, as a ``drop`` asked.

Inside the fork server, its judges (one per slot) take the same ``problem`` and
``sample`` requests and answer ``verdict``, or ``exited`` ``{id, status, seconds}``
when the sample's candidate ended before its check did.
"""

from __future__ import annotations

import enum
import json
import struct
from dataclasses import dataclass
from typing import IO, ClassVar, Union

__all__ = ["Verdict", "DefineProblem", "RunSample", "DropProblem", "Ready", "SampleVerdict", "ProblemStarted",
           "SampleDropped", "CandidateExited", "Message", "encode", "decode", "write", "read", "read_verdict", "FrameBuffer"]

HEADER = struct.Struct(">I")


class Verdict(str, enum.Enum):
    """What running a sample concluded. The one verdict type of the package (re-exported by
    :mod:`pytest_passk.verdicts`); defined here because the fork server can't import the package."""

    PASSED = "passed"
    FAILED = "failed"  # the check raised, or the program did not compile
    TIMEOUT = "timeout"
    CRASHED = "crashed"  # ended without a verdict: a signal, an exit, a broken result channel
    OOM = "oom"
    SUSPICIOUS = "suspicious"  # passed only through a result of its own class that overrides comparison
    ERROR = "error"  # the harness failed to run it: says nothing about the sample, left out of pass@k

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class DefineProblem:
    kind: ClassVar[str] = "problem"
    id: int
    prompt: str
    test: str
    entry_point: str
    data: str = ""


@dataclass(frozen=True)
class RunSample:
    kind: ClassVar[str] = "sample"
    id: int
    problem: int
    completion: str
    timeout: float


@dataclass(frozen=True)
class DropProblem:
    kind: ClassVar[str] = "drop"
    problem: int


@dataclass(frozen=True)
class ProblemStarted:
    kind: ClassVar[str] = "started"
    problem: int


@dataclass(frozen=True)
class SampleDropped:
    kind: ClassVar[str] = "dropped"
    id: int


@dataclass(frozen=True)
class CandidateExited:
    """Judge -> fork server: sample ``id``'s candidate ended (``status``, as ``waitpid``
    gives it) before the check did; the fork server, which knows the cgroups, says why."""

    kind: ClassVar[str] = "exited"
    id: int
    status: int
    seconds: float


@dataclass(frozen=True)
class Ready:
    kind: ClassVar[str] = "ready"
    layers: dict[str, str]
    hidden: dict[str, str]
    entry_error: str


@dataclass(frozen=True)
class SampleVerdict:
    kind: ClassVar[str] = "verdict"
    id: int
    verdict: Verdict
    message: str
    seconds: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "verdict", Verdict(self.verdict))


Message = Union[DefineProblem, RunSample, DropProblem, Ready, SampleVerdict, ProblemStarted, SampleDropped,
                CandidateExited]
MESSAGES: dict[str, type[Message]] = {cls.kind: cls for cls in (DefineProblem, RunSample, DropProblem, Ready, SampleVerdict,
                                                                 ProblemStarted, SampleDropped, CandidateExited)}


def encode(message: Message) -> bytes:
    data = json.dumps({"kind": message.kind, **vars(message)}).encode()
    return HEADER.pack(len(data)) + data


def decode(data: bytes) -> Message:
    fields = json.loads(data)
    return MESSAGES[fields.pop("kind")](**fields)


def write(stream: IO[bytes], message: Message) -> None:
    stream.write(encode(message))
    stream.flush()


def read(stream: IO[bytes]) -> Message:
    """The next message; EOFError at the end of the stream (or within a frame)."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        raise EOFError
    (size,) = HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return decode(data)


def read_verdict(stream: IO[bytes]) -> SampleVerdict:
    """The next verdict, past the notices before it (``started``, ``dropped``)."""
    while True:
        message = read(stream)
        if isinstance(message, SampleVerdict):
            return message


class FrameBuffer:
    """Bytes read without blocking, cut into whole messages as they complete."""

    def __init__(self) -> None:
        self.data = bytearray()

    def feed(self, chunk: bytes) -> list[Message]:
        self.data += chunk
        messages, start = [], 0
        while len(self.data) - start >= HEADER.size:
            (size,) = HEADER.unpack_from(self.data, start)
            end = start + HEADER.size + size
            if len(self.data) < end:
                break
            messages.append(decode(bytes(self.data[start + HEADER.size : end])))
            start = end
        del self.data[:start]
        return messages
