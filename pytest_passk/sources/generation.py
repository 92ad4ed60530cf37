"""The controller's model step: sample what the cache lacks, and hand back the run's completion plan."""

from __future__ import annotations

import os
import socket
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .cache import GenerationCache, IdentityMemo, cache_key
from .completions import CompletionPlan
from ..problems import Problem
from .sampling import SERVED_PREFIX, GeneratedCompletion, Job, ModelLoadError, SamplingParams

__all__ = ["ModelOptions", "GenerationReport", "generate_completions"]


@dataclass(frozen=True)
class ModelOptions:
    model: str
    revision: str | None
    dtype: str
    device: str
    trust_remote_code: bool
    batch_size: int | None
    # A served model (``openai:NAME``): where, the variable holding the API key, requests in flight.
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8

    @property
    def served(self) -> bool:
        return self.model.startswith(SERVED_PREFIX)


@dataclass
class GenerationReport:
    plan: CompletionPlan
    generated: int
    cached: int
    tokens: int
    seconds: float
    model_identity: dict[str, Any]
    weights_loaded: bool | None = None  # None: a served model, no weights here; a fully cached run: False
    # Of ``seconds``: loading the weights, and the first batch (a GPU's warm-up: kernels, allocator).
    load_seconds: float = 0.0
    first_batch_seconds: float = 0.0
    replicas: list[dict[str, Any]] | None = None  # with several replicas: each one's device and samples


def silence_progress_bars() -> None:
    """Under ``-q``, transformers' and the hub's own bars ("Loading weights") stay quiet too.
    Their switches are process-wide: this runs on the controller, which is quiet throughout."""
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    disable_progress_bars()


def make_sampler(options: ModelOptions) -> Any:
    """The backend for ``options.model``: a server (``openai:NAME``) or transformers in this process."""
    if options.served:
        from .served import ServedSampler

        if not options.base_url:
            raise ModelLoadError(f"--model {options.model}: needs --passk-base-url (the server's /v1 address)")
        return ServedSampler(options.model, base_url=options.base_url, api_key_env=options.api_key_env,
                             concurrency=options.concurrency)
    from .transformers_model import TransformersSampler, replica_devices

    def on(device: str) -> TransformersSampler:
        return TransformersSampler(options.model, revision=options.revision, dtype=options.dtype, device=device,
                                   trust_remote_code=options.trust_remote_code, batch_size=options.batch_size)

    devices = replica_devices(options.model, options.device)
    if len(devices) == 1:
        return on(devices[0])
    from .replicas import ReplicatedSampler

    return ReplicatedSampler([on(device) for device in devices])


def identity_request(options: ModelOptions, params: SamplingParams) -> dict[str, Any] | None:
    """What a local model's identity is computed from, read without torch: its files' names,
    sizes and modification times, the options, and what decides ``auto`` here (the host and
    its visible GPUs). None where the identity needs the model itself: a served model, a hub
    id, a chat template to apply."""
    directory = Path(options.model).expanduser()
    if options.served or params.chat or not directory.is_dir():
        return None
    files = sorted((str(path.relative_to(directory)), stat.st_size, stat.st_mtime_ns)
                   for path in directory.rglob("*") if path.is_file() for stat in (path.stat(),))
    return {"path": str(directory.resolve()), "files": files, "revision": options.revision, "dtype": options.dtype,
            "device": options.device, "trust_remote_code": options.trust_remote_code, "host": socket.gethostname(),
            "visible_gpus": os.environ.get("CUDA_VISIBLE_DEVICES")}


def plan_line(model: str, problems: int, params: SamplingParams, wanted: int, cached: int, to_generate: int) -> str:
    """``wanted``: the samples drawn per problem, all temperatures together (a greedy one's once)."""
    if params.study:
        greedy = ", greedy: one drawn, repeated" if any(t <= 0 for t in params.study) else ""
        temperatures = ", ".join(f"{t:g}" for t in params.study)
        shape = f"{params.samples} samples x {len(params.study)} temperatures ({temperatures}{greedy})"
    else:
        shape = f"{params.samples} samples" + (" (greedy: one drawn, repeated)" if params.greedy else "")
    return (f"passk: sampling plan for {model}: {problems} problems x {shape}; "
            f"{cached} of {problems * wanted} cached, {to_generate} to generate")


def generate_completions(
    problems: Sequence[Problem],
    options: ModelOptions,
    params: SamplingParams,
    cache_dir: Path,
    *,
    regenerate: bool = False,
    quiet: bool = False,
    say: Callable[[str], None] | None = None,
) -> GenerationReport:
    """Make sure ``params.samples`` samples exist for every problem, at each of the run's
    temperatures, in the cache under ``cache_dir``, and return them as the run's plan
    (a problem's samples numbered temperature by temperature), with their
    log-probabilities. ``say`` gets one line stating the plan before anything is
    generated (or loaded)."""
    from tqdm import tqdm

    sampler: Any = None

    def open_sampler() -> Any:
        nonlocal sampler
        if sampler is None:
            if quiet and not options.served:
                silence_progress_bars()
            sampler = make_sampler(options)
        return sampler

    # A local model's identity as last computed, if nothing it depends on changed: then a
    # fully cached rerun never imports torch, loads the tokenizer or hashes the weights.
    memo = IdentityMemo(cache_dir)
    request = identity_request(options, params)
    identity = memo.recall(request) if request is not None else None
    if identity is None:
        identity = open_sampler().identity()
        if request is not None:
            memo.remember(request, identity)
    cache = GenerationCache(cache_dir / "samples")
    # Each temperature is sampled on its own, under its own cache keys: adding one later samples only it.
    temperatures = [params.at(t) for t in params.temperatures]
    # Greedy decoding gives one answer: draw it once and repeat it n times.
    wanted = {at.temperature: 1 if at.greedy else at.samples for at in temperatures}
    keys: dict[tuple[str, float], str] = {}
    jobs: dict[float, list[Job]] = defaultdict(list)
    cached = 0
    for at in temperatures:
        for problem in problems:
            # Without a chat template (the memo's case) the prompt is sampled as the problem gives it.
            prompt = sampler.prompt_text(problem.prompt, at) if sampler is not None else problem.prompt
            key = keys[(problem.task_id, at.temperature)] = cache_key(identity, at.identity(), prompt)
            if regenerate:
                cache.store(key, [])
            have = len(cache.load(key))
            cached += min(have, wanted[at.temperature])
            if have < wanted[at.temperature]:
                jobs[at.temperature].append(Job(key, problem.prompt, wanted[at.temperature] - have, problem.task_id))
    total = sum(job.count for group in jobs.values() for job in group)
    if say is not None:
        say(plan_line(options.model, len(problems), params, sum(wanted.values()), cached, total))
    started = time.perf_counter()
    with tqdm(total=total, unit="sample", desc=f"sampling {options.model}", disable=quiet or total == 0,
              dynamic_ncols=True) as progress:

        def keep(batch: list[tuple[Job, GeneratedCompletion]]) -> None:
            by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for job, sample in batch:
                by_key[job.key].append(sample.to_json())
            for key, samples in by_key.items():
                cache.extend(key, samples)
            progress.update(len(batch))
            rate = sampler.generated_tokens / max(time.perf_counter() - started, 1e-9)
            progress.set_postfix_str(f"{rate:.0f} tok/s")

        for at in temperatures:
            if jobs[at.temperature]:
                open_sampler().sample(jobs[at.temperature], at, keep)
    seconds = time.perf_counter() - started
    plan = CompletionPlan()
    for problem in problems:
        for at in temperatures:
            samples = cache.load(keys[(problem.task_id, at.temperature)])[: wanted[at.temperature]]
            if at.greedy:
                samples = samples * params.samples
            for sample in samples:
                plan.add(problem.task_id, sample.get("completion"), sample, at.temperature)
    if sampler is None:  # everything was cached, the identity remembered
        return GenerationReport(plan, total, cached, 0, seconds, identity, weights_loaded=False)
    batches = getattr(sampler, "batch_seconds", [])
    return GenerationReport(plan, total, cached, sampler.generated_tokens, seconds, identity,
                            weights_loaded=getattr(sampler, "weights_loaded", None),
                            load_seconds=getattr(sampler, "load_seconds", 0.0),
                            first_batch_seconds=batches[0] if batches else 0.0,
                            replicas=sampler.shares() if hasattr(sampler, "shares") else None)
