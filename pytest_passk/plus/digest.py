"""The digest an expected output too large to carry in a test is kept as (a few of
HumanEval/15's and /130's are megabytes): a hash of a canonical form in which values
that ``==`` calls equal are one form (``1``, ``1.0`` and ``True``; a dict in any order),
and values it calls different are not (a list and a tuple). Its source is run by the
reference children that compute the expected outputs and by the check, both stdlib only.
"""

from __future__ import annotations

import hashlib

__all__ = ["BIG_OUTPUT", "DIGEST_SOURCE", "DIGEST_VERSION"]

# Outputs whose JSON is longer than this are carried as a digest.
BIG_OUTPUT = 1 << 16

# The canonical digest, shared by the reference run and the check (stdlib only).
DIGEST_SOURCE = '''
import array as _passk_array
import hashlib as _passk_hashlib


def _passk_numbers(value):
    """A list of numbers each exactly a double (nan excluded) as the hash of its doubles, in
    which 1, 1.0 and True are one form, as == says; None for any other list."""
    try:
        block = _passk_array.array("d", value)  # a TypeError for what is not a number
    except (TypeError, OverflowError):
        return None
    numbers = block.tolist()
    if numbers != (value if type(value) is list else list(value)):  # an int not exactly a double, or nan
        return None
    zero = -1
    try:
        while True:  # -0.0 == 0.0: each zero made +0.0, found at C speed
            zero = numbers.index(0.0, zero + 1)
            block[zero] = 0.0
    except ValueError:
        pass
    return "N" + _passk_hashlib.sha256(block).hexdigest()


def _passk_canonical(value, out):
    kind = type(value)
    if kind is bool or kind is int:
        out.append("n" + hex(value))
    elif kind is float:
        out.append("n" + hex(int(value)) if value.is_integer() else "f" + repr(value))
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
