"""HumanEval+ problems as ordinary ``check(candidate)`` tests, with EvalPlus's semantics.

The test made here holds each input, its expected output and its time limit, and
checks a sample as EvalPlus's ``unsafe_execute`` does (``evalplus/eval/__init__.py``):
each input deep-copied and the function called under its own time limit,
``max(min_time_limit, factor x the reference's seconds)`` (of CPU time here: samples
share cores, so waiting for one must not fail an input); the output equal to the
expected one, or, for floats (``atol``, or 1e-6 where the expected output is floats
and ``atol`` is 0), of the same type and length and ``numpy.allclose`` with
``rtol=1e-07``; ``find_zero`` (HumanEval/32) checked by the polynomial's value at the
answer, ``|poly(xs, x)| <= atol``. Base inputs first, then plus inputs; a sample stops at
its first failing input (``--passk-plus-details``: runs them all and counts).

The data travels beside the test, as the problem's ``data`` (the test's ``PASSK_DATA``):
one base64 string of ``marshal`` (built and read by the same interpreter), which every
judge and candidate reads in milliseconds, where compiling a problem's thousand inputs
as Python literals took seconds, and compiling even the string as a literal took tens of
milliseconds (23 MB a run, in each judge and candidate). An expected output
too large to carry in a test (a few of HumanEval/15's and /130's are megabytes) is kept
as a digest of its canonical form (:data:`DIGEST_SOURCE`: numbers by value, so
``1 == 1.0`` as ``==`` says) and compared by digest.

The time limits apply where the completion runs (the candidate's own run of this test);
in the judge, whose calls the candidate answers, they do not, and the sample's own
deadline, EvalPlus's ``min(60, sum of limits) + 1`` per stage, bounds it all.
"""

from __future__ import annotations

import base64
import dataclasses
import marshal
import math
from dataclasses import dataclass
from typing import Any

from ..problems import Problem
from ..sandbox.program import EVALPLUS_GUARD
from .digest import BIG_OUTPUT, DIGEST_SOURCE
from .oracles import Digest, Oracle

__all__ = ["PlusTiming", "DIGEST_SOURCE", "BIG_OUTPUT", "with_plus_check", "pack", "PLUS_FAILURE"]

# How a digest travels in the test's data.
DIGEST_MARK = "__passk_digest__"
# How the check's failure message starts when a plus input failed (the base inputs all passed).
PLUS_FAILURE = "AssertionError: plus input "

CHECK_SOURCE = '''
import binascii as _passk_binascii
import copy as _passk_copy
import marshal as _passk_marshal
import math as _passk_math
import signal as _passk_signal

import numpy as _passk_np


class InputTimeout(Exception):
    """An input took longer than its time limit."""


class _PasskDigest:
    def __init__(self, digest, floats):
        self.digest, self.floats = digest, floats

    def __repr__(self):
        return "<an output too large to show>"


def _passk_unpack(text):
    """The stages' data, a digest marker made a _PasskDigest again."""
    stages = []
    for stage, inputs, expected, limits in _passk_marshal.loads(_passk_binascii.a2b_base64(text)):
        expected = [_PasskDigest(e[1], e[2]) if type(e) is tuple and len(e) == 3 and e[0] == DIGEST_MARK else e
                    for e in expected]
        stages.append((stage, inputs, expected, limits))
    return stages


_PASSK_ATOMS = frozenset({type(None), bool, int, float, complex, str, bytes})  # deepcopy keeps these as they are


def _passk_fresh(args):
    """copy.deepcopy(args), in one step for what most inputs are: scalars and lists or tuples
    of scalars (no list twice among them, so no sharing to keep)."""
    fresh, lists = [], set()
    for arg in args:
        kind = type(arg)
        if kind in _PASSK_ATOMS:
            fresh.append(arg)
        elif (kind is list or kind is tuple) and id(arg) not in lists and set(map(type, arg)) <= _PASSK_ATOMS:
            lists.add(id(arg))
            fresh.append(arg[:] if kind is list else arg)
        else:
            return _passk_copy.deepcopy(args)
    return fresh


def _passk_alarm(signum, frame):
    raise InputTimeout("over its time limit")


def _passk_call(candidate, args, limit, timed):
    if not timed:  # in the judge: the sandbox answers, timed there
        return candidate(*args)
    # CPU time, not wall clock: samples share cores (and a slow one yields its core), so
    # waiting for a CPU must not fail an input; one that sleeps meets the sample's deadline.
    _passk_signal.setitimer(_passk_signal.ITIMER_PROF, limit)
    try:
        return candidate(*args)
    finally:
        _passk_signal.setitimer(_passk_signal.ITIMER_PROF, 0)


def _passk_is_floats(x):
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)):
        return all(isinstance(i, float) for i in x)
    if isinstance(x, _passk_np.ndarray):
        return x.dtype == _passk_np.float64 or x.dtype == _passk_np.float32
    return False


def _passk_poly(xs, x):
    return sum([coeff * _passk_math.pow(x, i) for i, coeff in enumerate(xs)])


def _passk_matches(args, out, exp, atol):
    try:
        if PASSK_ENTRY_POINT == "find_zero" and PASSK_SUITE == "HumanEval+":
            return abs(_passk_poly(*args, out)) <= atol
        if isinstance(exp, _PasskDigest):
            return _passk_digest(out) == exp.digest
        exact = out == exp
        if atol == 0 and _passk_is_floats(exp):
            atol = 1e-6
        if not exact and atol != 0:
            if type(out) != type(exp):
                return False
            if isinstance(exp, (list, tuple)) and len(out) != len(exp):
                return False
            return bool(_passk_np.allclose(out, exp, rtol=1e-07, atol=atol))
        return bool(exact)
    except Exception:
        return False


def _passk_short(value):
    try:
        text = repr(value)
    except Exception:  # an int too long to show
        return f"<{type(value).__name__} too large to show>"
    return text if len(text) <= 120 else text[:117] + "..."


def check(candidate):
    timed = type(candidate).__name__ != "RemoteFunction"
    previous = _passk_signal.signal(_passk_signal.SIGPROF, _passk_alarm) if timed else None
    try:
        _passk_check(candidate, timed)
    finally:
        if timed:
            _passk_signal.signal(_passk_signal.SIGPROF, previous)


def _passk_check(candidate, timed):
    failures, first = 0, None
    for stage, inputs, expected, limits in _passk_unpack(PASSK_DATA):
        for index, args in enumerate(inputs):
            where = f"{stage} input {index + 1} of {len(inputs)}"
            try:
                out = _passk_call(candidate, _passk_fresh(args), limits[index], timed)
            except Exception as exc:  # as the sandbox described it, when it crossed from there
                raised = getattr(exc, "passk_description", None) or f"{type(exc).__name__}: {exc}"
                if raised.startswith("InputTimeout"):
                    raised += f" (limit {limits[index]:.1f} s)"
                problem = f"{where}: {raised}"[:300]
            else:
                if _passk_matches(args, out, expected[index], PASSK_ATOL):
                    continue
                problem = f"{where}: {_passk_short(args)} gave {_passk_short(out)}, expected {_passk_short(expected[index])}"
            if not PASSK_DETAILS:
                raise AssertionError(problem)
            failures, first = failures + 1, first or problem
        if failures:
            raise AssertionError(f"{first} ({failures} of {len(inputs)} {stage} inputs failed)")
'''


@dataclass(frozen=True)
class PlusTiming:
    """EvalPlus's time limits (its defaults), and whether a sample runs every input."""

    min_time_limit: float = 4.0
    factor: float = 4.0
    details: bool = False

    def limits(self, seconds: list[float]) -> list[float]:
        return [max(self.min_time_limit, self.factor * s) for s in seconds]

    @staticmethod
    def budget(limits: list[float]) -> float:
        """A stage's share of the sample's deadline, as EvalPlus gives its process."""
        return min(60.0, sum(limits)) + 1.0 if limits else 0.0


def pack(stages: list[tuple[str, list[Any], list[Any], list[float]]]) -> str:
    """The stages' data as the test carries it: base64 of ``marshal`` (which keeps every type
    of plain data: tuples, sets, ints of any size, inf and nan), a digest as a marked tuple."""
    marked = [(stage, inputs, [(DIGEST_MARK, e.digest, e.floats) if isinstance(e, Digest) else e for e in expected],
               limits) for stage, inputs, expected, limits in stages]
    return base64.b64encode(marshal.dumps(marked)).decode("ascii")


def with_plus_check(problem: Problem, oracle: Oracle, timing: PlusTiming) -> Problem:
    """``problem`` with the test made from its data and expected outputs (the test, and the
    data it reads), and its deadline."""
    assert problem.plus is not None
    if oracle.error:
        test = f"def check(candidate):\n    raise AssertionError({('expected outputs unavailable: ' + oracle.error)!r})\n"
        return dataclasses.replace(problem, test=test, timeout=1.0)
    stages, budget = [], 0.0
    for stage, inputs in (("base", problem.plus.base_input), ("plus", problem.plus.plus_input)):
        limits = timing.limits(oracle.seconds[stage])
        budget += timing.budget(limits)
        stages.append((stage, inputs, oracle.outputs[stage], [round(x, 3) for x in limits]))
    test = "".join([EVALPLUS_GUARD, "\n".join([
        f"PASSK_SUITE, PASSK_ENTRY_POINT = {problem.suite!r}, {problem.entry_point!r}",
        f"PASSK_ATOL, PASSK_DETAILS = {problem.plus.atol!r}, {timing.details!r}",
        f"DIGEST_MARK = {DIGEST_MARK!r}",
        DIGEST_SOURCE,
        CHECK_SOURCE,
    ])])
    cost = sum(oracle.seconds["base"]) + sum(oracle.seconds["plus"])
    return dataclasses.replace(problem, test=test, data=pack(stages), timeout=math.ceil(budget * 10) / 10, cost=cost)
