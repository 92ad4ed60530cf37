"""A hand-written pytest-passk problem (see README, "Adding problems").

PROMPT is what the model sees; CANONICAL_SOLUTION completes it (the self-check
runs it when no --model or --passk-completions is given); everything else in
the file is the test, run after the completion as `check(running_max)`.
"""

PROMPT = '''from typing import List


def running_max(numbers: List[int]) -> List[int]:
    """Return the list of running maxima: element i is the largest of numbers[:i + 1].
    >>> running_max([1, 3, 2, 5, 4])
    [1, 3, 3, 5, 5]
    >>> running_max([])
    []
    """
'''

CANONICAL_SOLUTION = '''    result = []
    for number in numbers:
        result.append(number if not result else max(result[-1], number))
    return result
'''


def check(candidate):
    assert candidate([1, 3, 2, 5, 4]) == [1, 3, 3, 5, 5]
    assert candidate([]) == []
    assert candidate([-5, -7, -1]) == [-5, -5, -1]
    assert candidate([2, 2, 2]) == [2, 2, 2]
    assert candidate(list(range(100, 0, -1))) == [100] * 100
