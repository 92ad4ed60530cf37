"""A hand-written pytest-passk problem whose test uses a helper of its own."""

PROMPT = '''def is_balanced(text: str) -> bool:
    """Return True when every bracket in text - (), [] and {} - is closed in the right order.
    Characters that are not brackets are ignored.
    >>> is_balanced("f(a[0]) { }")
    True
    >>> is_balanced("(]")
    False
    """
'''

CANONICAL_SOLUTION = '''    pairs = {")": "(", "]": "[", "}": "{"}
    stack = []
    for char in text:
        if char in "([{":
            stack.append(char)
        elif char in pairs:
            if not stack or stack.pop() != pairs[char]:
                return False
    return not stack
'''

CASES = [
    ("", True),
    ("()", True),
    ("([]{})", True),
    ("f(a[0]) { }", True),
    ("(]", False),
    ("(()", False),
    ("())", False),
    ("}{", False),
    ("([)]", False),
]


def check(candidate):
    for text, expected in CASES:
        assert candidate(text) is expected, text
