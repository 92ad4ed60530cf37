"""The digest an expected output too large to carry in a test is kept as (a few of
HumanEval/15's and /130's are megabytes): a hash of a canonical form in which values
that ``==`` calls equal are one form (``1``, ``1.0`` and ``True``; a dict in any order),
and values it calls different are not (a list and a tuple). Its source is run by the
reference children that compute the expected outputs and by the check (stdlib and
numpy, which the check compares with anyway): both sides of a sample digest each
large output, so a list of millions of numbers is checked and hashed at C speed, and a
long string hashed as it is, not written out as its repr first.
"""

from __future__ import annotations

import hashlib

__all__ = ["BIG_OUTPUT", "DIGEST_SOURCE", "DIGEST_VERSION"]

# Outputs whose JSON is longer than this are carried as a digest.
BIG_OUTPUT = 1 << 16

# The canonical digest, shared by the reference run and the check (stdlib and numpy).
DIGEST_SOURCE = '''
import array as _passk_array
import hashlib as _passk_hashlib

import numpy as _passk_numpy

_PASSK_EXACT = 2.0 ** 53  # every int below this is exactly a double (and only those round to one below it)
_PASSK_LONG_TEXT = 256  # a str longer than this is hashed as its UTF-8, not written as its repr


def _passk_numbers(value):
    """A list of numbers each exactly a double (nan excluded) as the hash of its doubles, in
    which 1, 1.0 and True are one form, as == says; None for any other list."""
    try:
        block = _passk_array.array("d", value)  # a TypeError for what is not a number
    except (TypeError, OverflowError):
        return None
    doubles = _passk_numpy.frombuffer(block, dtype=_passk_numpy.float64)
    if _passk_numpy.isnan(doubles).any():  # nan == nan is False: no digest may say otherwise
        return None
    # From 2**53 on an int may have been rounded on its way to a double: those lists are compared
    # back exactly (a rule by value: lists that == calls equal take the same way).
    if (_passk_numpy.abs(doubles) >= _PASSK_EXACT).any() and block.tolist() != list(value):
        return None
    return "N" + _passk_hashlib.sha256(doubles + 0.0).hexdigest()  # + 0.0: -0.0 == 0.0, one form


def _passk_canonical(value, out):
    kind = type(value)
    if kind is bool or kind is int:
        out.append("n" + hex(value))
    elif kind is float:
        out.append("n" + hex(int(value)) if value.is_integer() else "f" + repr(value))
    elif kind is str and len(value) > _PASSK_LONG_TEXT:
        out.append("S" + _passk_hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest())
    elif kind is str or kind is bytes or value is None or kind is complex:
        out.append(kind.__name__[0] + repr(value))
    elif kind is list or kind is tuple:
        out.append(kind.__name__[0] + str(len(value)) + "(")
        numbers = _passk_numbers(value) if value else None
        if numbers is not None:
            out.append(numbers)
        else:
            for item in value:
                _passk_canonical(item, out)
        out.append(")")
    elif kind is dict:
        out.append("d(")
        for key in sorted(value, key=repr):
            _passk_canonical(key, out)
            _passk_canonical(value[key], out)
        out.append(")")
    elif kind is set or kind is frozenset:
        out.append("s{" + ",".join(sorted(_passk_digest(item) for item in value)) + "}")
    else:
        out.append("?" + kind.__name__ + repr(value))


def _passk_digest(value):
    out = []
    _passk_canonical(value, out)
    return _passk_hashlib.sha256("\\x00".join(out).encode("utf-8", "surrogatepass")).hexdigest()
'''

# Part of the expected outputs' cache key: a digest made another way is another digest.
DIGEST_VERSION = hashlib.sha256(DIGEST_SOURCE.encode()).hexdigest()[:16]
