"""How execution throughput grows with cores: every sample executed, on 1, 2, 4, ... CPUs.

For each count c (the powers of two below the CPUs this process may use, and that count),
runs ``pytest -n c`` over 164 x --copies reference solutions with ``--passk-no-dedup``,
pinned to c of those CPUs (as a SLURM job or a container pins a run: the fork servers
size themselves by them), and prints samples a second, per CPU, the speed-up over the
first count (one CPU by default), and the controller's own CPU a sample, the serial work
that would cap the growth.

    python benchmarks/bench_cores.py                 # 164 x 20: on 1 and 2 CPUs here
    python benchmarks/bench_cores.py --copies 50     # on a 16-core host: 1, 2, 4, 8, 16
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from bench_controller import measure
from bench_execution import reference_workload


def counts(available: int) -> list[int]:
    steps = [1 << power for power in range(available.bit_length()) if 1 << power < available]
    return [*steps, available]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=20, help="copies of each reference solution")
    parser.add_argument("--cpus", type=int, nargs="*", help="the counts to measure (default: 1, 2, 4, ... all)")
    args = parser.parse_args()
    available = sorted(os.sched_getaffinity(0))
    plan = args.cpus or counts(len(available))
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        samples = reference_workload(directory, args.copies)
        print(f"{164 * args.copies} reference solutions, every sample executed, pytest -n CPUS pinned to CPUS of "
              f"this machine's {len(available)}")
        print("samples/s: once they flow (first to last report, start-up left out); wall: the whole command")
        print(f"{'CPUs':>5} {'wall':>8} {'samples/s':>10} {'a CPU':>7} {'speed-up':>9} {'controller':>16}")
        first = None
        for count in plan:
            run = measure(samples, count, directory, cpus=set(available[:count]), rate=True)
            rate = run.steady_rate
            first = first or rate
            print(f"{count:>5} {run.wall:>7.1f}s {rate:>10.0f} {rate / count:>7.0f} {rate / first:>8.2f}x "
                  f"{run.controller / run.samples * 1000:>10.3f} ms/sample", flush=True)


if __name__ == "__main__":
    main()
