"""A hand-written pytest-passk problem with an explicit TASK_ID and a round-trip property."""

TASK_ID = "examples/run_length_encode"

PROMPT = '''from typing import List, Tuple


def run_length_encode(text: str) -> List[Tuple[str, int]]:
    """Encode text as (character, count) pairs of maximal runs.
    >>> run_length_encode("aaabccdddd")
    [('a', 3), ('b', 1), ('c', 2), ('d', 4)]
    >>> run_length_encode("")
    []
    """
'''

CANONICAL_SOLUTION = '''    encoded = []
    for char in text:
        if encoded and encoded[-1][0] == char:
            encoded[-1] = (char, encoded[-1][1] + 1)
        else:
            encoded.append((char, 1))
    return encoded
'''


def check(candidate):
    assert candidate("aaabccdddd") == [("a", 3), ("b", 1), ("c", 2), ("d", 4)]
    assert candidate("") == []
    assert candidate("x") == [("x", 1)]
    for text in ("abc", "aabbaa", "z" * 50, "mississippi"):
        pairs = candidate(text)
        assert "".join(char * count for char, count in pairs) == text
        assert all(a[0] != b[0] for a, b in zip(pairs, pairs[1:]))
