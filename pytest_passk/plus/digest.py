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

_PASSK_EXACT = 2 ** 53  # every int up to this is a float exactly


def _passk_numbers(value):
    """A list of numbers within +-2**53 (nan excluded) as the bytes of its floats, in which
    1, 1.0 and True are one form, as == says; None for any other list."""
    if not set(map(type, value)) <= {int, float, bool}:
        return None
    total = sum(value)
    if total != total or min(value) < -_PASSK_EXACT or max(value) > _PASSK_EXACT:  # nan makes min and max lie
        return None
    block = _passk_array.array("d", value)
    if 0.0 in block:  # -0.0 == 0.0
        for index, item in enumerate(block):
            if item == 0.0:
                block[index] = 0.0
    return "N" + block.tobytes().hex()


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
