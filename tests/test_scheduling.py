from __future__ import annotations

import pytest

pytest.importorskip("xdist")

from types import SimpleNamespace  # noqa: E402

from pytest_passk.scheduling import costliest_first, owned_scopes, problem_scope, scope_owners  # noqa: E402

from .conftest import Completions, write_jsonl  # noqa: E402


def test_problem_scope() -> None:
    assert problem_scope("problems/HumanEval.suite.toml::HumanEval/0[17]") == "problems/HumanEval.suite.toml::HumanEval/0"
    assert problem_scope("problems/x.jsonl.gz::a/b[0]") == "problems/x.jsonl.gz::a/b"
    assert problem_scope("problems/examples/problem_rle.py::examples/rle[3]") == "problems/examples/problem_rle.py::examples/rle"
    # Ordinary tests, parametrized or not, are units of their own.
    assert problem_scope("tests/test_x.py::test_y[1]") == "tests/test_x.py::test_y[1]"
    assert problem_scope("tests/test_x.py::TestA::test_y") == "tests/test_x.py::TestA::test_y"


def test_problems_are_dealt_round_robin_in_collection_order() -> None:
    nodeids = [f"p.jsonl::T/{t}[{i}]" for t in range(5) for i in range(3)] + ["tests/test_a.py::test_b"]
    owners = scope_owners(nodeids, 2)
    assert owners == {"p.jsonl::T/0": 0, "p.jsonl::T/1": 1, "p.jsonl::T/2": 0, "p.jsonl::T/3": 1, "p.jsonl::T/4": 0,
                      "tests/test_a.py::test_b": 1}
    assert owned_scopes(nodeids, 0, 2) | owned_scopes(nodeids, 1, 2) == set(owners)
    assert not owned_scopes(nodeids, 0, 2) & owned_scopes(nodeids, 1, 2)


def test_the_costliest_problems_are_dealt_and_run_first() -> None:
    """HumanEval+'s problems carry the reference's seconds: under xdist each worker orders its
    collection as the controller ranked them (the same order in every worker) before it is dealt,
    so each worker's long samples start first; samples of one problem stay together, and what the
    ranking leaves out (unknown cost, an ordinary test) keeps its order, last."""
    def sample(task: str, index: int) -> SimpleNamespace:
        return SimpleNamespace(nodeid=f"p.jsonl::{task}[{index}]", problem=SimpleNamespace(suite="P", task_id=task))

    items = [sample(f"T/{t}", i) for t in range(5) for i in range(2)] + [SimpleNamespace(nodeid="tests/test_a.py::test_b")]
    costliest_first(items, [("P", "T/1"), ("P", "T/3"), ("P", "T/0"), ("P", "T/4")])
    assert [item.nodeid for item in items] == [
        "p.jsonl::T/1[0]", "p.jsonl::T/1[1]", "p.jsonl::T/3[0]", "p.jsonl::T/3[1]", "p.jsonl::T/0[0]",
        "p.jsonl::T/0[1]", "p.jsonl::T/4[0]", "p.jsonl::T/4[1]", "p.jsonl::T/2[0]", "p.jsonl::T/2[1]",
        "tests/test_a.py::test_b"]
    assert scope_owners([item.nodeid for item in items], 2)["p.jsonl::T/3"] == 1  # the second costliest: the other worker
    unranked = [sample(f"T/{t}", 0) for t in range(3)]
    costliest_first(unranked, [])
    assert [item.nodeid for item in unranked] == ["p.jsonl::T/0[0]", "p.jsonl::T/1[0]", "p.jsonl::T/2[0]"]


def test_mixed_with_ordinary_tests_under_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="import pytest\n\n@pytest.mark.parametrize('x', range(5))\ndef test_x(x):\n    assert x < 4\n")
    pytester.makefile(
        ".py",
        problem_one="PROMPT = 'def one():\\n'\nCANONICAL_SOLUTION = '    return 1\\n'\ndef check(candidate):\n    assert candidate() == 1\n",
    )
    result = pytester.runpytest("-n", "2", "test_plain.py", "problem_one.py")
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines(["hand-written: 1 problems, n = 1 samples each: pass@1 = 100.00% [95% CI 100.0-100.0]"])


def test_no_sample_runs_twice_when_an_idle_worker_takes_over(pytester: pytest.Pytester, completions_file: Completions) -> None:
    """Worker 1's first problem blocks its reporting on a slow sample while its fork server runs
    the rest of its problems, submitted ahead; worker 0 runs out of its own meanwhile. It may take
    over only problems worker 1's fork server has not started, which then drops them: every
    sample runs once (each appends its task id to a file: --passk-isolation=basic keeps the disk)."""
    problems = [{"task_id": f"P/{i}", "prompt": "def f():\n", "entry_point": "f",
                 "test": "def check(candidate):\n    assert candidate() == 1\n"} for i in range(12)]
    write_jsonl(pytester.path / "problems" / "p.jsonl", problems)
    ran = pytester.path / "ran.txt"

    def completion(task: str, index: int) -> str:
        slow = "    time.sleep(1.5)\n" if (task, index) == ("P/1", 0) else ""
        return f"    import time\n{slow}    open({str(ran)!r}, 'a').write('{task}#{index}\\n')\n    return 1\n"

    samples = [(f"P/{i}", completion(f"P/{i}", index)) for i in range(12) for index in range(3)]
    result = pytester.runpytest("problems", "-n", "2", f"--passk-completions={completions_file(samples)}",
                                "--passk-isolation=basic", "--passk-no-dedup", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=36)
    runs = ran.read_text().split()
    assert sorted(runs) == sorted(f"P/{i}#{index}" for i in range(12) for index in range(3))
