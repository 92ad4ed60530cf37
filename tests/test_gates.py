"""CI gates and the numbers behind them: thresholds, baselines, exit statuses, intervals, junitxml."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from pytest_passk.gates import GATE_FAILED, GateError, Threshold, parse_threshold

from .conftest import Completions

RIGHT = {"Toy/0": "    return a + b\n", "Toy/1": "    return 2 * x\n"}
WRONG = {"Toy/0": "    return a - b\n", "Toy/1": "    return x\n"}


def samples(right: dict[str, int], n: int = 4) -> list[tuple[str, str | None]]:
    """``right[task]`` right samples of ``n`` per task, told apart by a comment so none is shared."""
    rows: list[tuple[str, str | None]] = []
    for task, count in right.items():
        rows += [(task, (RIGHT[task] if i < count else WRONG[task]) + f"    # {i}\n") for i in range(n)]
    return rows


@pytest.mark.parametrize(
    ("text", "expected"),
    [("pass@1=0.30", Threshold("pass@1", 0.30)), ("pass@10=45%", Threshold("pass@10", 0.45)),
     ("HumanEval:pass@1 = 0.5", Threshold("pass@1", 0.5, "HumanEval"))],
)
def test_parse_threshold(text: str, expected: Threshold) -> None:
    assert parse_threshold(text, "--passk-min") == expected


@pytest.mark.parametrize("text", ["pass@0=0.3", "pass@1", "pass@1=1.5", "bleu=0.3", "pass@1=abc"])
def test_parse_threshold_rejects(text: str) -> None:
    with pytest.raises(GateError, match="--passk-min"):
        parse_threshold(text, "--passk-min")


def run(pytester: pytest.Pytester, path: Path, *args: str) -> pytest.RunResult:
    return pytester.runpytest("problems", "-p", "no:randomly", f"--passk-completions={path}", "--passk-k=1,2", *args)


@pytest.mark.parametrize("mode", [[], ["-n", "2"]], ids=["no-xdist", "xdist"])
def test_minimum_gate_decides_the_exit_status(pytester: pytest.Pytester, toy_problems: Path,
                                              completions_file: Completions, mode: list[str]) -> None:
    path = completions_file(samples({"Toy/0": 3, "Toy/1": 1}))  # pass@1 = (0.75 + 0.25) / 2 = 50%
    holds = run(pytester, path, *mode, "--passk-min=pass@1=0.5", "--passk-min=pass@2=50%")
    holds.stdout.fnmatch_lines(["*= gates =*", "pass@1 >= 50.00% on toy: measured 50.00%  PASS",
                                "pass@2 >= 50.00% on toy: measured 75.00%  PASS"])
    assert holds.ret == pytest.ExitCode.OK  # samples failed, but the gates hold
    fails = run(pytester, path, *mode, "--passk-min=pass@1=0.51")
    fails.stdout.fnmatch_lines(["pass@1 >= 51.00% on toy: measured 50.00%  FAIL"])
    assert fails.ret == GATE_FAILED
    no_gate = run(pytester, path, *mode)
    assert no_gate.ret == pytest.ExitCode.TESTS_FAILED  # pytest's own status without a gate


def test_gate_from_ini_and_unmeasurable_k(pytester: pytest.Pytester, toy_problems: Path,
                                          completions_file: Completions) -> None:
    pytester.makeini("[pytest]\npassk_min =\n    pass@1=0.9\n    toy:pass@8=0.1\n")
    result = run(pytester, completions_file(samples({"Toy/0": 4, "Toy/1": 4})))
    result.stdout.fnmatch_lines(["pass@1 >= 90.00% on toy: measured 100.00%  PASS",
                                 "pass@8 >= 10.00% on toy: not measurable (n = 4 samples, fewer than k)  FAIL"])
    assert result.ret == GATE_FAILED


def test_harness_errors_override_gates(pytester: pytest.Pytester, toy_problems: Path, completions_file: Completions) -> None:
    (pytester.path / "problems" / "problem_broken.py").write_text("PROMPT = 'def f():\\n'\n")
    result = run(pytester, completions_file(samples({"Toy/0": 4, "Toy/1": 4})), "--passk-min=pass@1=0.1",
                 "--continue-on-collection-errors")
    result.stdout.fnmatch_lines(["1 harness errors: the gates can't be trusted"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_baseline_drop_gate_and_changed_problems(pytester: pytest.Pytester, toy_problems: Path,
                                                 completions_file: Completions) -> None:
    baseline = pytester.path / "baseline.json"
    run(pytester, completions_file(samples({"Toy/0": 4, "Toy/1": 2}), "before.jsonl"), f"--passk-json={baseline}")
    after = completions_file(samples({"Toy/0": 1, "Toy/1": 3}), "after.jsonl")  # pass@1: 75% -> 50%
    report = pytester.path / "after.json"
    result = run(pytester, after, f"--passk-baseline={baseline}", "--passk-max-drop=pass@1=0.02",
                 f"--passk-json={report}")
    result.stdout.fnmatch_lines([
        "    vs baseline, 1 problems worse by pass@1: Toy/0 (-75)",
        "    vs baseline, 1 problems better by pass@1: Toy/1 (+25)",
        "pass@1 drop <= 2.00 points vs baseline on toy: 75.00% -> 50.00% (-25.00 points, p = *; 2 common problems)  FAIL",
    ])
    assert result.ret == GATE_FAILED
    comparison = json.loads(report.read_text())["baseline_comparison"][0]
    assert comparison["metrics"]["pass@1"]["baseline"] == pytest.approx(0.75)
    assert comparison["metrics"]["pass@1"]["current"] == pytest.approx(0.5)
    # With two problems no drop can be significant: only a significant one fails.
    lenient = run(pytester, after, f"--passk-baseline={baseline}", "--passk-max-drop=pass@1=0.02",
                  "--passk-require-significant")
    lenient.stdout.fnmatch_lines(["*(-25.00 points, p = *, not significant; 2 common problems)  PASS"])
    assert lenient.ret == pytest.ExitCode.OK
    small = run(pytester, after, f"--passk-baseline={baseline}", "--passk-max-drop=pass@1=0.30")
    assert small.ret == pytest.ExitCode.OK


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--passk-max-drop=pass@1=0.02"], "--passk-max-drop needs --passk-baseline"),
     (["--passk-baseline=missing.json"], "--passk-baseline: */missing.json: file not found"),
     (["--passk-min=pass@1"], "--passk-min: expected [[]SUITE:[]]pass@K[[]@T[]]=VALUE*"),
     (["--passk-ci=2"], "--passk-ci: expected a level such as 0.95 (or off), got '2'")],
)
def test_gate_usage_errors(pytester: pytest.Pytester, toy_problems: Path, completions_file: Completions,
                           args: list[str], message: str) -> None:
    result = run(pytester, completions_file(samples({"Toy/0": 1})), *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


def test_junitxml_has_pass_at_k_properties(pytester: pytest.Pytester, toy_problems: Path,
                                           completions_file: Completions) -> None:
    xml = pytester.path / "junit.xml"
    run(pytester, completions_file(samples({"Toy/0": 3, "Toy/1": 1})), "-n", "2", f"--junitxml={xml}",
        "--passk-min=pass@1=0.4")
    suite = ElementTree.parse(xml).getroot().find("testsuite")
    assert suite is not None
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert float(properties["passk:toy:pass@1"]) == pytest.approx(0.5)
    assert float(properties["passk:toy:pass@2"]) == pytest.approx(0.75)
    low, high = map(float, properties["passk:toy:pass@1:interval"].split())
    assert low == pytest.approx(0.25) and high == pytest.approx(0.75)
    assert properties["passk:gate"].endswith("PASS")
    assert len(suite.findall("testcase")) == 8 + 1  # every sample, and Toy/2's skip


def test_confidence_level_option(pytester: pytest.Pytester, toy_problems: Path, completions_file: Completions) -> None:
    path = completions_file(samples({"Toy/0": 3, "Toy/1": 1}))
    run(pytester, path, "--passk-ci=off").stdout.fnmatch_lines(["toy: 2 problems, n = 4 samples each: pass@1 = 50.00%  pass@2 = 75.00%"])
    run(pytester, path, "--passk-ci=0.9").stdout.fnmatch_lines(["toy: *pass@1 = 50.00% [[]90% CI 25.0-75.0[]]*"])
