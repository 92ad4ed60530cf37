"""HumanEval+: pytest-passk against EvalPlus's own evaluator, and against a HumanEval run.

Runs, in one go, with the same number of workers:
  1. pytest-passk's HumanEval self-check (the anchor for "a few times a HumanEval run");
  2. pytest-passk on the HumanEval+ release file, with the reference solutions or a
     completions file (the expected outputs from the cache, as a second run has them;
     a first run also computes them, timed apart);
  3. where evalplus is installed (``--evalplus PYTHON``: an environment that has it),
     EvalPlus's ``evalplus.evaluate`` on the same completions and data file, and every
     sample's verdict compared, base tests and base + plus.

    python benchmarks/bench_plus.py --data ../shared/data/HumanEvalPlus-v0.1.10.jsonl.gz
    python benchmarks/bench_plus.py --data ../shared/data/HumanEvalPlus-v0.1.10.jsonl.gz \\
        --samples ../shared/data/wizardcoder15b_greedy.jsonl --evalplus /tmp/evp/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUS_FAILURE = "AssertionError: plus input "


def pytest_run(targets: list[str], workers: int, extra: list[str]) -> float:
    command = [sys.executable, "-m", "pytest", *targets, "-q", "--no-header", "-p", "no:cacheprovider", "-n",
               str(workers), f"--rootdir={ROOT}", "--passk-no-bleu", *extra]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    print("  " + "\n  ".join(line for line in done.stdout.strip().splitlines()[-7:] if "%" in line or " in " in line))
    if done.returncode not in (0, 1):
        sys.exit(f"pytest-passk run failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds


def reference_samples(data: Path, directory: Path) -> Path:
    """The canonical solutions as a completions file (what EvalPlus's self-check evaluates)."""
    import gzip

    path = directory / "reference.jsonl"
    opener = gzip.open if data.name.endswith(".gz") else open
    with opener(data, "rt", encoding="utf-8") as rows, path.open("w") as out:
        for line in rows:
            row = json.loads(line)
            out.write(json.dumps({"task_id": row["task_id"], "completion": row["canonical_solution"]}) + "\n")
    return path


def evalplus_verdicts(python: str, samples: Path, data: Path, workers: int,
                      scratch: Path) -> tuple[float, dict[tuple[str, int], tuple[bool, bool]]]:
    """EvalPlus's verdicts on a copy of ``samples`` under ``scratch``: it writes its results
    beside the file it is given, which must not be the user's data directory."""
    work = scratch / "evalplus"
    work.mkdir(exist_ok=True)
    copy = work / samples.name
    shutil.copy(samples, copy)
    env = dict(os.environ, HUMANEVAL_OVERRIDE_PATH=str(data.resolve()))
    start = time.perf_counter()
    done = subprocess.run([python, "-m", "evalplus.evaluate", "humaneval", "--samples", str(copy), "--parallel",
                           str(workers), "--i_just_wanna_run"], cwd=work, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"evalplus failed:\n{done.stderr[-3000:]}")
    print("  " + "\n  ".join(done.stdout.strip().splitlines()[-6:]))
    results = json.loads(next(work.glob("*_eval_results.json")).read_text())
    verdicts = {}
    for task_id, rows in results["eval"].items():
        for index, row in enumerate(rows):
            base = row["base_status"] == "pass"
            verdicts[(task_id, index)] = (base, base and row["plus_status"] == "pass")
    return seconds, verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="EvalPlus's HumanEvalPlus.jsonl.gz")
    parser.add_argument("--samples", type=Path, help="a completions file (default: the reference solutions)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--evalplus", help="a Python that has evalplus installed, to compare with")
    args = parser.parse_args()
    data = args.data.resolve()
    with tempfile.TemporaryDirectory(prefix="bench-plus-") as scratch:
        directory = Path(scratch)
        cache = directory / "cache"
        samples = args.samples.resolve() if args.samples else reference_samples(data, directory)
        report = directory / "report.json"
        common = [str(data), f"--passk-cache-dir={cache}", f"--passk-completions={samples}", f"--passk-json={report}"]
        print("pytest-passk, HumanEval's reference self-check:")
        humaneval = pytest_run([], args.workers, [f"--passk-cache-dir={cache}"])
        print("pytest-passk, HumanEval+, expected outputs computed in this run:")
        first = pytest_run(common, args.workers, [])
        print("pytest-passk, HumanEval+, expected outputs from the cache:")
        plus = pytest_run(common, args.workers, [])
        print(f"HumanEval self-check {humaneval:.1f} s; HumanEval+ {plus:.1f} s = {plus / humaneval:.1f}x "
              f"(first run, computing the expected outputs: {first:.1f} s)")
        if not args.evalplus:
            return
        ours = {}
        for sample in json.loads(report.read_text())["samples"]:
            passed = sample["verdict"] == "passed"
            ours[(sample["task_id"], sample["index"])] = (passed or sample["message"].startswith(PLUS_FAILURE), passed)
        print("evalplus.evaluate:")
        seconds, theirs = evalplus_verdicts(args.evalplus, samples, data, args.workers, directory)
        base = sum(ours[key][0] == theirs[key][0] for key in theirs)
        both = sum(ours[key][1] == theirs[key][1] for key in theirs)
        print(f"EvalPlus {seconds:.1f} s (its expected outputs from its own cache once it has them); pytest-passk {plus:.1f} s "
              f"= {seconds / plus:.2f}x; verdicts agree: base {base} of {len(theirs)}, base + plus {both} of {len(theirs)}")
        for key in sorted(key for key in theirs if ours.get(key) != theirs[key]):
            print(f"  differs: {key}: EvalPlus (base, plus) {theirs[key]}, pytest-passk {ours.get(key)}")


if __name__ == "__main__":
    main()
