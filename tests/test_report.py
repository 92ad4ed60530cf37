"""The report: the paper's metrics, BLEU, the JSON record of the run, and the HTML page rendered in Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import write_jsonl

RIGHT0, WRONG0 = "    return a + b\n", "    return a - b\n"
RIGHT1, WRONG1 = "    return 2 * x\n", "    return x\n"


def scored_samples(path: Path) -> Path:
    """Log-probabilities chosen so that the mean pick and the sum pick disagree on Toy/0."""
    rows = [
        {"task_id": "Toy/0", "completion": RIGHT0, "mean_logprob": -0.1, "sum_logprob": -10.0},
        {"task_id": "Toy/0", "completion": WRONG0, "mean_logprob": -0.5, "sum_logprob": -2.0},
        {"task_id": "Toy/0", "completion": RIGHT0, "mean_logprob": -0.2, "sum_logprob": -12.0},
        {"task_id": "Toy/0", "completion": RIGHT0, "mean_logprob": -0.3, "sum_logprob": -14.0},
        {"task_id": "Toy/1", "completion": WRONG1, "mean_logprob": -0.2, "sum_logprob": -1.0},
        {"task_id": "Toy/1", "completion": RIGHT1, "mean_logprob": -0.3, "sum_logprob": -3.0},
    ]
    return write_jsonl(path, rows)


def test_paper_metrics_and_bleu(pytester: pytest.Pytester, toy_problems: Path) -> None:
    path = scored_samples(pytester.path / "samples.jsonl")
    report = pytester.path / "report.json"
    result = pytester.runpytest("problems", f"--passk-completions={path}", "--passk-k=1,2", f"--passk-json={report}")
    # mean pick: Toy/0 right, Toy/1 wrong = 50%; sum pick: both wrong = 0%; any right: both = 100%;
    # distinct completions: Toy/0 2 of 4, Toy/1 2 of 2 = 75%.
    result.stdout.fnmatch_lines(["    pass@1 by mean log-p = 50.00%, pass@1 by sum log-p = 0.00%, "
                                 "oracle pass@n = 100.00%, unique completions = 75.0%"])
    data = json.loads(report.read_text())
    suite = data["suites"][0]
    assert suite["paper"] == {"pass@1_mean_logprob": 0.5, "pass@1_sum_logprob": 0.0, "oracle_pass@n": 1.0,
                              "unique_fraction": 0.75}
    bleu = {(s["task_id"], s["index"]): s["bleu"] for s in data["samples"]}
    assert bleu[("Toy/0", 0)] == bleu[("Toy/1", 1)] == 100.0  # the reference solution itself
    assert 0 < bleu[("Toy/0", 1)] < 100 and bleu[("Toy/1", 0)] < 100
    assert suite["bleu"]["separation_auc"] == 1.0 and suite["bleu"]["problems_with_both"] == 2
    assert suite["bleu"]["per_problem"]["Toy/0"]["passed"]["n"] == 3
    assert suite["bleu"]["per_problem"]["Toy/0"]["failed"]["mean"] == bleu[("Toy/0", 1)]
    assert [s["completion"] for s in data["samples"]][:2] == [RIGHT0, WRONG0]


def test_json_records_what_reproduces_the_run(pytester: pytest.Pytester, toy_problems: Path) -> None:
    report = pytester.path / "report.json"
    pytester.runpytest("problems", "--passk-timeout=2.5", f"--passk-json={report}")
    run = json.loads(report.read_text())["run"]
    assert run["plugin_version"] == "0.1.0" and run["timeout"] == 2.5 and run["source"] == "reference solutions"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", run["date"])
    assert re.fullmatch(r"[0-9a-f]{64}", run["problems_sha256"])
    assert run["isolation"]["mode"] == "auto" and "pid-namespace" in run["isolation"]["layers"]
    # The hash follows the problems' content.
    (pytester.path / "problems" / "toy.jsonl").write_text((pytester.path / "problems" / "toy.jsonl").read_text().replace("Return a + b", "Sum"))
    pytester.runpytest("problems", f"--passk-json={report}")
    assert json.loads(report.read_text())["run"]["problems_sha256"] != run["problems_sha256"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("Chromium is not installed (.ci/run installs Debian's chromium)")


def render(page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         f"--user-data-dir={page.parent / 'chromium-profile'}", *args, page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    )


def test_html_report_renders_in_chromium(pytester: pytest.Pytester, toy_problems: Path) -> None:
    path = scored_samples(pytester.path / "samples.jsonl")
    page = pytester.mkdir("report") / "index.html"
    pytester.runpytest("problems", f"--passk-completions={path}", "--passk-k=1,2", f"--passk-html={page}",
                       "--passk-min=pass@1=0.4")
    html = page.read_text()
    assert not re.search(r"""(src|href)=["']?https?:""", html), "the page must be self-contained"
    dom = render(page, "--dump-dom").stdout
    assert '<table id="summary">' in dom and "pass@1 = <b>62.50%</b>" in dom  # (3/4 + 1/2) / 2
    assert "pass@1 &gt;= 40.00% on toy: measured 62.50%" in dom and 'class="PASS"' in dom
    assert dom.count("<polyline") == 1 and dom.count("<circle") == 2  # pass@1 and pass@2 on the curve
    # Problems sorted by pass rate, each with its samples one click away.
    assert dom.index("<summary>Toy/1</summary>") < dom.index("<summary>Toy/0</summary>")
    assert dom.count("<summary>completion</summary>") == 6
    assert "Chance that a passing sample has a higher BLEU" in dom
    screenshot = pytester.path / "report.png"
    render(page, f"--screenshot={screenshot}", "--window-size=1200,2000")
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 20_000
