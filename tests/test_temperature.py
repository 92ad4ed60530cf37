"""The temperature study: pass@k per sampling temperature and the best temperature for each k,
from a completions file with a ``temperature`` field and from a model sampled at several."""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from pytest_passk.gates import GATE_FAILED, Threshold, parse_threshold
from pytest_passk.items import sample_labels
from pytest_passk.scoring.study import best_temperatures
from pytest_passk.scoring.summary import summarize
from pytest_passk.verdicts import SampleRecord, Verdict

from .conftest import write_jsonl
from .test_report import render

RIGHT = {"Toy/0": "    return a + b\n", "Toy/1": "    return 2 * x\n"}
WRONG = {"Toy/0": "    return a - b\n", "Toy/1": "    return x\n"}
# Right samples of 4 per task and temperature: at T0.2 one problem always, the other never
# (pass@1 50%, pass@4 50%); at T0.8 one in four of each (pass@1 25%, pass@4 100%). The
# best temperature rises with k, as in the paper; pass@2 ties (50% both), and a tie goes to
# the lower temperature.
STUDY = {0.2: {"Toy/0": 4, "Toy/1": 0}, 0.8: {"Toy/0": 1, "Toy/1": 1}}


def study_rows(study: dict[float, dict[str, int]], n: int = 4) -> list[dict[str, object]]:
    """Temperatures interleaved line by line, as a file sampled elsewhere may have them."""
    rows: list[dict[str, object]] = []
    for i in range(n):
        for temperature, right in study.items():
            for task, count in right.items():
                text = (RIGHT[task] if i < count else WRONG[task]) + f"    # {temperature} {i}\n"
                rows.append({"task_id": task, "completion": text, "temperature": temperature})
    return rows


def pass_at_k(n: int, c: int, k: int) -> float:
    """The Codex paper's unbiased estimator, written out: 1 - C(n - c, k) / C(n, k)."""
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def by_hand(samples: list[dict[str, Any]], ks: tuple[int, ...]) -> dict[float, dict[str, float]]:
    """pass@k per temperature from the report's per-sample verdicts, averaged over problems."""
    counts: dict[float, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for sample in samples:
        tally = counts[sample["temperature"]][sample["task_id"]]
        tally[0] += 1
        tally[1] += sample["verdict"] == "passed"
    return {t: {f"pass@{k}": sum(pass_at_k(n, c, k) for n, c in tasks.values()) / len(tasks) for k in ks}
            for t, tasks in counts.items()}


def run(pytester: pytest.Pytester, path: Path, *args: str) -> pytest.RunResult:
    return pytester.runpytest("problems", "-p", "no:randomly", f"--passk-completions={path}", "--passk-k=1,2,4",
                              *args)


@pytest.mark.parametrize("mode", [[], ["-n", "2"]], ids=["no-xdist", "xdist"])
def test_completions_file_with_temperatures(pytester: pytest.Pytester, toy_problems: Path, mode: list[str]) -> None:
    path = write_jsonl(pytester.path / "study.jsonl", study_rows(STUDY))
    report = pytester.path / "report.json"
    result = run(pytester, path, *mode, f"--passk-json={report}")
    result.assert_outcomes(passed=6, failed=10, skipped=1)
    data = json.loads(report.read_text())
    samples = data["samples"]
    assert len(samples) == 16 and {s["temperature"] for s in samples} == {0.2, 0.8}
    # Each sample's verdict is its completion's: right ones pass, wrong ones fail.
    for sample in samples:
        assert (sample["verdict"] == "passed") == sample["completion"].startswith(RIGHT[sample["task_id"]])
    expected = by_hand(samples, (1, 2, 4))
    assert expected == {0.2: {"pass@1": 0.5, "pass@2": 0.5, "pass@4": 0.5},
                        0.8: {"pass@1": 0.25, "pass@2": 0.5, "pass@4": 1.0}}
    figures = {s["temperature"]: s for s in data["suites"]}
    for temperature, values in expected.items():
        assert figures[temperature]["pass_at_k"] == pytest.approx(values)
        assert figures[temperature]["label"] == f"toy at T{temperature:g}" and figures[temperature]["in_study"]
    assert data["temperature_study"]["toy"]["pass@1"]["temperature"] == 0.2
    assert data["temperature_study"]["toy"]["pass@2"]["temperature"] == 0.2  # a tie: the lower temperature
    assert data["temperature_study"]["toy"]["pass@4"] | {"interval": None} == {"temperature": 0.8, "value": 1.0,
                                                                               "interval": None}
    result.stdout.fnmatch_lines([
        "toy at T0.2: 2 problems, n = 4 samples each: pass@1 = 50.00% [[]95% CI *[]]  pass@2 = 50.00% *  pass@4 = 50.00% *",
        "    verdicts: 4 passed, 4 failed",
        "toy at T0.8: 2 problems, n = 4 samples each: pass@1 = 25.00% *  pass@2 = 50.00% *  pass@4 = 100.00% *",
        "    verdicts: 2 passed, 6 failed",
        "toy, best temperature for each k: pass@1 = 50.00% at T0.2 [[]95% CI *[]]  pass@2 = 50.00% at T0.2 *  "
        "pass@4 = 100.00% at T0.8 [[]95% CI 100.0-100.0[]]",
    ])


def test_node_ids_name_the_temperature(pytester: pytest.Pytester, toy_problems: Path) -> None:
    path = write_jsonl(pytester.path / "study.jsonl", study_rows(STUDY))
    collected = run(pytester, path, "--collect-only", "-q")
    ids = [line for line in collected.stdout.lines if "::Toy/" in line and "[" in line]
    # Numbered within each temperature, in file order, though the file interleaves them.
    assert ids[:8] == [f"problems/toy.jsonl::Toy/0[T{t}-{i}]" for i in range(4) for t in ("0.2", "0.8")]
    assert len(ids) == 16
    one = run(pytester, path, "-k", "T0.8-")
    one.assert_outcomes(passed=2, failed=6)  # only T0.8's samples: its figure, no study
    one.stdout.fnmatch_lines(["toy: 2 problems, n = 4 samples each: pass@1 = 25.00% *"])
    assert "best temperature" not in one.stdout.str()
    rerun = run(pytester, path, "--lf", "-n", "2")
    rerun.assert_outcomes(failed=6)  # the samples that failed last time, T0.8's alone (T0.2's did not run)


def test_gates_at_the_best_or_a_named_temperature(pytester: pytest.Pytester, toy_problems: Path) -> None:
    path = write_jsonl(pytester.path / "study.jsonl", study_rows(STUDY))
    result = run(pytester, path, "--passk-min=pass@1=40%", "--passk-min=pass@4=90%", "--passk-min=pass@1@T0.8=40%")
    result.stdout.fnmatch_lines([
        "*= gates =*",
        "pass@1 >= 40.00% on toy at the best temperature (T0.2): measured 50.00%  PASS",
        "pass@4 >= 90.00% on toy at the best temperature (T0.8): measured 100.00%  PASS",
        "pass@1 >= 40.00% on toy at T0.8: measured 25.00%  FAIL",
    ])
    assert result.ret == GATE_FAILED
    missing = run(pytester, path, "--passk-min=pass@1@0.5=10%")
    missing.stdout.fnmatch_lines(["pass@1 >= 10.00% on toy at T0.5: no samples at that temperature  FAIL"])
    assert missing.ret == GATE_FAILED


def test_baseline_pairs_the_same_temperature(pytester: pytest.Pytester, toy_problems: Path) -> None:
    baseline = pytester.path / "baseline.json"
    run(pytester, write_jsonl(pytester.path / "before.jsonl", study_rows(STUDY)), f"--passk-json={baseline}")
    # T0.2 as before; at T0.8 Toy/1 is never right now: pass@4 at T0.8 100% -> 50%.
    after = write_jsonl(pytester.path / "after.jsonl", study_rows({0.2: STUDY[0.2], 0.8: {"Toy/0": 1, "Toy/1": 0}}))
    report = pytester.path / "after.json"
    result = run(pytester, after, f"--passk-baseline={baseline}", "--passk-max-drop=pass@1@T0.2=0",
                 "--passk-max-drop=pass@4@T0.8=0.1", "--passk-max-drop=pass@4=0.1", f"--passk-json={report}")
    result.stdout.fnmatch_lines([
        "    vs baseline at T0.8, 1 problems worse by pass@1: Toy/1 (-25)",
        "pass@1 drop <= 0.00 points vs baseline on toy at T0.2: 50.00% -> 50.00% (+0.00 points, *)  PASS",
        "pass@4 drop <= 10.00 points vs baseline on toy at T0.8: 100.00% -> 50.00% (-50.00 points, *)  FAIL",
        # Now T0.2 and T0.8 tie at 50% for pass@4: the best is the lower, compared with the baseline's T0.2.
        "pass@4 drop <= 10.00 points vs baseline on toy at the best temperature (T0.2): 50.00% -> 50.00% *  PASS",
    ])
    assert result.ret == GATE_FAILED
    comparisons = {c["temperature"]: c for c in json.loads(report.read_text())["baseline_comparison"]}
    assert comparisons[0.8]["metrics"]["pass@4"]["baseline"] == pytest.approx(1.0)
    assert comparisons[0.8]["metrics"]["pass@4"]["current"] == pytest.approx(0.5)
    assert comparisons[0.2]["metrics"]["pass@1"]["current"] == comparisons[0.2]["metrics"]["pass@1"]["baseline"] == 0.5


@pytest.mark.parametrize(("rows", "message"), [
    ([{"task_id": "Toy/0", "completion": "x", "temperature": 0.2}, {"task_id": "Toy/0", "completion": "x"}],
     "*study.jsonl:2: temperature missing, unlike line 1 (give every line a temperature, or none)"),
    ([{"task_id": "Toy/0", "completion": "x", "temperature": "hot"}],
     "*study.jsonl:1: temperature must be a number >= 0, got 'hot'"),
])
def test_malformed_temperatures_are_one_line(pytester: pytest.Pytester, toy_problems: Path,
                                             rows: list[dict[str, object]], message: str) -> None:
    result = run(pytester, write_jsonl(pytester.path / "study.jsonl", rows))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


@pytest.mark.parametrize(("value", "message"), [("hot", "expected a number or comma-separated numbers"),
                                                ("0.2,-1", "each temperature must be a number >= 0")])
def test_temperature_option_errors(pytester: pytest.Pytester, value: str, message: str) -> None:
    result = pytester.runpytest(f"--passk-temperature={value}", "--model=nowhere", "--samples=2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--passk-temperature: {message}*"])


def test_html_draws_pass_at_k_against_temperature(pytester: pytest.Pytester, toy_problems: Path) -> None:
    page = pytester.mkdir("report") / "index.html"
    run(pytester, write_jsonl(pytester.path / "study.jsonl", study_rows(STUDY)), f"--passk-html={page}")
    dom = render(page, "--dump-dom").stdout
    study = re.search(r'<svg[^>]*class="temperature-study".*?</svg>', dom, re.DOTALL)
    assert study is not None, "the page has the temperature figure"
    figure = study.group(0)
    assert figure.count("<polyline") == 3  # one line per k: pass@1, pass@2, pass@4
    assert figure.count('class="best"') == 3 and "best for pass@4: T0.8" in figure and "best for pass@1: T0.2" in figure
    assert "pass@4 at T0.8 = 100.00%" in figure and "pass@1 at T0.2 = 50.00%" in figure
    assert '<table class="best-temperatures">' in dom and "toy at T0.8: problems by pass rate" in dom
    screenshot = pytester.path / "study.png"
    render(page, f"--screenshot={screenshot}", "--window-size=1200,1400")
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 20_000


def test_sample_labels() -> None:
    assert sample_labels([0.8, 0.8], study=False) == ["0", "1"]
    assert sample_labels([0.2, 0.8, 0.2, 0.0], study=True) == ["T0.2-0", "T0.8-0", "T0.2-1", "T0-0"]


@pytest.mark.parametrize(("text", "expected"), [
    ("pass@1@T0.2=30%", Threshold("pass@1", 0.30, None, 0.2)),
    ("HumanEval+:pass@10@0.8=0.5", Threshold("pass@10", 0.5, "HumanEval+", 0.8)),
    ("pass@1=0.3", Threshold("pass@1", 0.3)),
])
def test_parse_threshold_with_temperature(text: str, expected: Threshold) -> None:
    assert parse_threshold(text, "--passk-min") == expected


def test_best_temperature_per_k_from_records() -> None:
    def records(temperature: float, passed: dict[str, int]) -> list[SampleRecord]:
        return [SampleRecord("S", task, i, Verdict.PASSED if i < c else Verdict.FAILED, "", 0.0, temperature=temperature)
                for task, c in passed.items() for i in range(10)]

    summaries = summarize(records(0.2, {"a": 6, "b": 0}) + records(1.0, {"a": 2, "b": 2}), (1, 10), None)
    assert [(s.label, s.pass_at_k["pass@1"]) for s in summaries] == [("S at T0.2", pytest.approx(0.3)),
                                                                       ("S at T1", pytest.approx(0.2))]
    best = best_temperatures(summaries)["S"]
    assert (best["pass@1"].temperature, best["pass@1"].value) == (0.2, pytest.approx(0.3))
    assert (best["pass@10"].temperature, best["pass@10"].value) == (1.0, pytest.approx(1.0))
    # One temperature: no study, the figure named as before.
    (single,) = summarize(records(0.8, {"a": 1}), (1,), None)
    assert single.label == "S" and single.temperature == 0.8 and not single.in_study
