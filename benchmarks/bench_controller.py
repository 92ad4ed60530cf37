"""The xdist controller's own CPU per sample: the serial work that caps a run however many cores it has.

Runs ``pytest -n WORKERS`` over 164 x --copies reference solutions (or --samples FILE) with
every sample executed (``--passk-no-dedup``), and reads CPU time from inside each process:
the controller's (its own, not its children's) over the session, and each xdist worker's
(its own, not its fork server's or samples'), through a small plugin loaded in all of them.

    python benchmarks/bench_controller.py                 # 164 x 100 reference solutions, -n 2
    python benchmarks/bench_controller.py --workers 16 --copies 50
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench_execution import reference_workload

ROOT = Path(__file__).resolve().parent.parent

# Loaded with -p in the controller and (xdist passes -p on) in every worker.
PROBE = '''
import json, os, resource, time

def _cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

def pytest_sessionstart(session):
    session.config._passk_cpu_start = _cpu()

def pytest_sessionfinish(session):
    config = session.config
    spent = _cpu() - config._passk_cpu_start
    if hasattr(config, "workerinput"):
        config.workeroutput["passk_cpu"] = spent
    else:
        config._passk_cpu_spent = spent

_first = _last = 0.0
_reports = 0

if os.environ.get("PASSK_CPU_PROBE_RATE"):  # only where asked: it adds to the controller's CPU
    def pytest_runtest_logreport(report):
        global _first, _last, _reports
        if report.when == "call":  # in the controller: every sample's, from any worker
            now = time.perf_counter()
            _first, _last, _reports = _first or now, now, _reports + 1

def pytest_testnodedown(node, error):
    node.config._passk_workers = getattr(node.config, "_passk_workers", []) + [node.workeroutput.get("passk_cpu")]

def pytest_unconfigure(config):
    if hasattr(config, "workerinput"):
        return
    with open(os.environ["PASSK_CPU_PROBE_OUT"], "w") as out:
        json.dump({"controller": getattr(config, "_passk_cpu_spent", None),
                   "controller_total": _cpu(), "workers": getattr(config, "_passk_workers", []),
                   "reports": _reports, "reporting": _last - _first}, out)
'''


@dataclass
class Measurement:
    samples: int
    wall: float  # seconds, the whole pytest command
    controller: float  # the controller's CPU seconds over the session
    controller_total: float  # and over its whole process, start-up included
    workers: list[float]  # each xdist worker's own CPU seconds
    tail: list[str]  # pytest's last lines
    reports: int  # samples' reports the controller received
    reporting: float  # seconds from the first to the last of them

    @property
    def steady_rate(self) -> float:
        """Samples a second once they flow, start-up and collection left out."""
        return (self.reports - 1) / self.reporting if self.reporting > 0 else 0.0


def measure(samples: Path, workers: int, directory: Path, dedup: bool = False,
            cpus: set[int] | None = None, rate: bool = False) -> Measurement:
    """``pytest -n WORKERS`` over ``samples`` with the CPU probe loaded (``cpus``: the run
    pinned to those CPUs, as a SLURM job or a container pins it; ``rate``: the samples'
    reports timed too, for :attr:`Measurement.steady_rate`)."""
    count = sum(1 for line in samples.read_text().splitlines() if line.strip())
    (directory / "passk_cpu_probe.py").write_text(PROBE)
    out = directory / "cpu.json"
    out.unlink(missing_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(directory), os.environ.get("PYTHONPATH")])),
               PASSK_CPU_PROBE_OUT=str(out))
    env.pop("PYTEST_XDIST_AUTO_NUM_WORKERS", None)
    if rate:
        env["PASSK_CPU_PROBE_RATE"] = "1"
    command = [sys.executable, "-m", "pytest", str(ROOT / "problems" / "HumanEval.suite.toml"), "-q", "--no-header",
               "-p", "no:cacheprovider", "-p", "passk_cpu_probe", "-n", str(workers),
               f"--passk-completions={samples}", f"--rootdir={ROOT}", f"--passk-cache-dir={directory / 'cache'}",
               "--passk-no-bleu", *([] if dedup else ["--passk-no-dedup"])]
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, preexec_fn=pin)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1) or not out.exists():
        sys.exit(f"pytest-passk run failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    cpu = json.loads(out.read_text())
    return Measurement(count, wall, cpu["controller"], cpu["controller_total"],
                       [w for w in cpu["workers"] if w is not None], done.stdout.strip().splitlines()[-3:],
                       cpu["reports"], cpu["reporting"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=Path, help="completions file (default: 164 x --copies reference solutions)")
    parser.add_argument("--copies", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dedup", action="store_true", help="identical completions run once (the default mode)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        samples = args.samples.resolve() if args.samples else reference_workload(directory, args.copies)
        run = measure(samples, args.workers, directory, args.dedup)
        count = run.samples
        print("pytest-passk:", *run.tail, sep="\n  ")
        mode = "identical completions run once" if args.dedup else "every sample executed"
        print(f"workload: {count} samples, {args.workers} workers, {mode}; wall {run.wall:.1f} s")
        print(f"controller CPU over the session: {run.controller:.2f} s = {run.controller / count * 1000:.3f} ms a sample "
              f"(whole process, start-up included: {run.controller_total:.2f} s)")
        print(f"workers' own CPU: {sum(run.workers):.2f} s in all ({', '.join(f'{w:.2f}' for w in run.workers)}) = "
              f"{sum(run.workers) / count * 1000:.3f} ms a sample")


if __name__ == "__main__":
    main()
