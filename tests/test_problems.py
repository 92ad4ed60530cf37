from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from pytest_passk.problems import HANDWRITTEN_SUITE, ProblemFileError, load_problem_file

from .conftest import TOY_PROBLEMS

HANDWRITTEN = '''"""docstring of the file"""
import math

PROMPT = """def hyp(a: float, b: float) -> float:
    \\"\\"\\"Length of the hypotenuse.\\"\\"\\"
"""

CANONICAL_SOLUTION = """    return math.sqrt(a * a + b * b)
"""


def close(x, y):
    return abs(x - y) < 1e-9


def check(candidate):
    assert close(candidate(3, 4), 5)
'''


def test_jsonl_with_bom_crlf_and_gzip(tmp_path: Path) -> None:
    text = "\r\n".join(json.dumps(p) for p in TOY_PROBLEMS) + "\r\n\r\n"
    plain = tmp_path / "set.jsonl"
    plain.write_bytes(b"\xef\xbb\xbf" + text.encode())
    zipped = tmp_path / "set.jsonl.gz"
    zipped.write_bytes(gzip.compress(text.encode()))
    for path in (plain, zipped):
        problems = load_problem_file(path)
        assert [p.task_id for p in problems] == ["Toy/0", "Toy/1", "Toy/2"]
        assert problems[0].suite == "set"
        assert problems[0].canonical_solution == "    return a + b\n"
        assert problems[2].canonical_solution is None


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"task_id": "a"\n', "bad.jsonl:1: not valid JSON"),
        (json.dumps(TOY_PROBLEMS[0]) + "\n[1, 2]\n", "bad.jsonl:2: expected a JSON object"),
        ('{"task_id": "a", "prompt": "x"}\n', "bad.jsonl:1: not a problem: missing or non-string entry_point, test"),
        (json.dumps(TOY_PROBLEMS[0]) + "\n" + json.dumps(TOY_PROBLEMS[0]) + "\n", "bad.jsonl:2: duplicate task_id"),
        ("\n\n", "bad.jsonl: no problems in file"),
    ],
)
def test_malformed_jsonl_names_file_and_line(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(ProblemFileError) as excinfo:
        load_problem_file(path)
    assert expected in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_handwritten_problem(tmp_path: Path) -> None:
    path = tmp_path / "problem_hypotenuse.py"
    path.write_text(HANDWRITTEN)
    (problem,) = load_problem_file(path)
    assert problem.task_id == "hypotenuse"
    assert problem.entry_point == "hyp"
    assert problem.suite == HANDWRITTEN_SUITE
    assert "PROMPT" not in problem.test and "CANONICAL_SOLUTION" not in problem.test
    assert "import math" in problem.test and "def check(candidate)" in problem.test
    namespace: dict[str, object] = {}
    program = f"{problem.prompt}{problem.canonical_solution}\n{problem.test}\ncheck({problem.entry_point})"
    exec(program, namespace)  # the reference passes its own check, run as the reference evaluator runs it


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def check(candidate):\n    pass\n", "needs PROMPT"),
        ("PROMPT = 'def f():\\n'\n", "needs a check(candidate) function"),
        ("PROMPT = 'x = 1\\n'\ndef check(candidate):\n    pass\n", "PROMPT defines no function"),
        ("PROMPT = 'def f():\\n'\ndef check(candidate:\n", "problem_bad.py:2: syntax error"),
        ("PROMPT = f'def f():\\n'\ndef check(candidate):\n    pass\n", "expected a string literal"),
    ],
)
def test_broken_handwritten_problem(tmp_path: Path, source: str, expected: str) -> None:
    path = tmp_path / "problem_bad.py"
    path.write_text(source)
    with pytest.raises(ProblemFileError, match="problem_bad.py") as excinfo:
        load_problem_file(path)
    assert expected in str(excinfo.value)
