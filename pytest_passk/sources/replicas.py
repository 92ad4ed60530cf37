"""Data parallelism: a model that fits on one device runs one replica per device, each
sampling its share of the jobs (as bigcode-evaluation-harness does with accelerate);
``device_map="auto"`` sharding is left for models that do not fit on one."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from .sampling import GeneratedCompletion, Job, SamplingParams

__all__ = ["share_jobs", "ReplicatedSampler"]

# Each replica's batches draw from seeds of their own: seed + replica * SEED_STRIDE + batch.
SEED_STRIDE = 1 << 20


def share_jobs(jobs: Sequence[Job], replicas: int, tokens: Callable[[Job], int]) -> list[list[Job]]:
    """Split ``jobs`` into ``replicas`` shares of about equal work (samples x tokens each),
    heaviest first to the lightest share; a job stays whole, so its samples share one
    prompt's key/value cache."""
    shares: list[list[Job]] = [[] for _ in range(replicas)]
    loads = [0] * replicas
    for job in sorted(jobs, key=lambda j: (-j.count * tokens(j), j.key)):
        lightest = loads.index(min(loads))
        shares[lightest].append(job)
        loads[lightest] += job.count * tokens(job)
    return shares


class ReplicatedSampler:
    """Replicas of one model, one per device, sampling side by side in threads (torch lets go of
    the GIL in its kernels); what a batch finishes is handed on one batch at a time."""

    def __init__(self, replicas: Sequence[Any]) -> None:
        self.replicas = list(replicas)
        self.lock = threading.Lock()
        for number, replica in enumerate(self.replicas):
            replica.seed_offset = number * SEED_STRIDE

    def __getattr__(self, name: str) -> Any:  # tokenizer, config, identity, prompt_text: the first replica's
        return getattr(self.replicas[0], name)

    @property
    def generated_tokens(self) -> int:
        return sum(replica.generated_tokens for replica in self.replicas)

    @property
    def weights_loaded(self) -> bool:
        return any(replica.weights_loaded for replica in self.replicas)

    @property
    def load_seconds(self) -> float:
        return max(replica.load_seconds for replica in self.replicas)

    @property
    def batch_seconds(self) -> list[float]:
        firsts = [replica.batch_seconds[0] for replica in self.replicas if replica.batch_seconds]
        return [max(firsts)] if firsts else []

    def shares(self) -> list[dict[str, Any]]:
        """What each replica sampled, for the report."""
        return [{"device": replica.device, "samples": replica.samples_drawn} for replica in self.replicas]

    def sample(self, jobs: Sequence[Job], params: SamplingParams,
               on_batch: Callable[[list[tuple[Job, GeneratedCompletion]]], None]) -> None:
        first = self.replicas[0]
        lengths = {job.key: len(first.tokenizer(first.prompt_text(job.prompt, params))["input_ids"]) for job in jobs}
        shares = share_jobs(jobs, len(self.replicas), lambda job: lengths[job.key] + params.max_new_tokens)
        errors: list[BaseException] = []

        def keep(batch: list[tuple[Job, GeneratedCompletion]]) -> None:
            with self.lock:
                on_batch(batch)

        def run(replica: Any, share: list[Job]) -> None:
            try:
                replica.sample(share, params, keep)
            except BaseException as exc:  # re-raised below, in the caller's thread
                errors.append(exc)

        working = [(replica, share) for replica, share in zip(self.replicas, shares) if share]
        for replica, _ in working:  # one at a time: from_pretrained's meta-device set-up is process-wide
            replica.model
        threads = [threading.Thread(target=run, args=(replica, share), name=f"passk-replica-{replica.device}")
                   for replica, share in working]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
