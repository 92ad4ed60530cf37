"""``--model openai:NAME``: sampling from a model behind an OpenAI-compatible server
(vLLM, TGI, SGLang, llama.cpp, ``transformers serve``).

The prompt goes to ``/v1/completions`` exactly as the problem gives it (with
``--passk-chat``, to ``/v1/chat/completions``, and the completion is the code of
the reply). Requests run many at a time; the ``openai`` client retries 429s,
5xx answers, timeouts and dropped connections with exponential backoff. Servers
differ, so nothing is taken on trust: a server that returns fewer choices than
``n`` asked for (``transformers serve`` ignores ``n``) is asked again for the
rest, stop sequences are applied here as well, and log-probabilities are kept
only where the server returns them.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

from .sampling import CHAT_INSTRUCTION, SERVED_PREFIX, GeneratedCompletion, Job, ModelLoadError, SamplingParams, extract_code, truncate_at_stop

__all__ = ["ServedSampler", "SERVED_PREFIX"]

MAX_STOP_SEQUENCES = 4  # OpenAI's own limit; servers that take more get them all on the first try


class ServedSampler:
    """Samples from ``base_url`` with the same interface as the local backend."""

    def __init__(self, model: str, *, base_url: str, api_key_env: str = "OPENAI_API_KEY", concurrency: int = 8,
                 max_retries: int = 6, timeout: float = 600.0, samples_per_request: int = 100) -> None:
        try:
            import openai
        except ImportError as exc:
            raise ModelLoadError(f"--model {model}: needs the openai client: pip install 'pytest-passk[serve]' ({exc})") from None
        self.openai = openai
        self.name = model.removeprefix(SERVED_PREFIX)
        self.base_url = base_url.rstrip("/")
        self.concurrency = max(1, concurrency)
        self.samples_per_request = max(1, samples_per_request)
        self.api_key = os.environ.get(api_key_env) or "unused"  # local servers take any key
        self.max_retries, self.timeout = max_retries, timeout
        self.generated_tokens = 0
        self.requests = 0
        self.short_answers = 0  # responses with fewer choices than asked for
        self.choices_per_request: int | None = None  # learnt from a server that returns fewer than n
        self.stop_limit: int | None = None  # set when a server refuses more than MAX_STOP_SEQUENCES
        self._check_model()

    def _check_model(self) -> None:
        """One request up front, so that a wrong address or model name is one line, not a retry storm."""
        client = self.openai.OpenAI(base_url=self.base_url, api_key=self.api_key, max_retries=1, timeout=30.0)
        try:
            served = [model.id for model in client.models.list()]
        except self.openai.APIConnectionError as exc:
            raise ModelLoadError(f"--model {SERVED_PREFIX}{self.name}: cannot reach {self.base_url} ({exc})") from None
        except self.openai.AuthenticationError:
            raise ModelLoadError(f"--model {SERVED_PREFIX}{self.name}: {self.base_url} refused the API key") from None
        except self.openai.APIError:
            return  # a server without /models: the first sampling request will tell
        finally:
            client.close()
        if served and self.name not in served:
            raise ModelLoadError(f"--model {SERVED_PREFIX}{self.name}: not served at {self.base_url} "
                                 f"(it serves: {', '.join(served[:5])})")

    def identity(self) -> dict[str, Any]:
        return {"model": f"{SERVED_PREFIX}{self.name}", "base_url": self.base_url}

    def prompt_text(self, prompt: str, params: SamplingParams) -> str:
        return CHAT_INSTRUCTION + "```python\n" + prompt + "```" if params.chat else prompt

    def sample(self, jobs: Sequence[Job], params: SamplingParams,
               on_batch: Callable[[list[tuple[Job, GeneratedCompletion]]], None]) -> None:
        """Draw ``job.count`` samples per job, ``on_batch`` called with each answered request."""
        try:
            asyncio.run(self._sample_all(jobs, params, on_batch))
        except (self.openai.AuthenticationError, self.openai.PermissionDeniedError, self.openai.NotFoundError) as exc:
            raise ModelLoadError(f"--model {SERVED_PREFIX}{self.name}: {self.base_url} refused: {exc}") from None

    async def _sample_all(self, jobs: Sequence[Job], params: SamplingParams,
                          on_batch: Callable[[list[tuple[Job, GeneratedCompletion]]], None]) -> None:
        client = self.openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, max_retries=self.max_retries,
                                         timeout=self.timeout)
        gate = asyncio.Semaphore(self.concurrency)
        try:
            tasks = [asyncio.create_task(self._sample_job(client, gate, job, params, on_batch)) for job in jobs]
            try:
                await asyncio.gather(*tasks)
            except BaseException:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
        finally:
            await client.close()

    async def _sample_job(self, client: Any, gate: asyncio.Semaphore, job: Job, params: SamplingParams,
                          on_batch: Callable[[list[tuple[Job, GeneratedCompletion]]], None]) -> None:
        """Ask until ``job.count`` samples are in: the missing ones split into requests of
        at most as many choices as the server has shown it returns, all in flight at once,
        each kept (``on_batch``) as soon as it is answered."""
        done, attempt = 0, 0

        async def ask(n: int, seed: int) -> int:
            nonlocal done
            async with gate:
                samples = await self._request(client, job.prompt, n, params, seed)
            if len(samples) < n:
                self.short_answers += 1
                # The server returns fewer choices than n (transformers serve ignores n): ask for that many.
                self.choices_per_request = max(1, min(len(samples), self.choices_per_request or len(samples)))
            samples = samples[:n]
            if samples:
                done += len(samples)
                on_batch([(job, sample) for sample in samples])
            return len(samples)

        while done < job.count:
            per_request = self.choices_per_request or self.samples_per_request
            missing = job.count - done
            sizes = [min(per_request, missing - start) for start in range(0, missing, per_request)]
            answered = await asyncio.gather(*(ask(n, params.seed + attempt + i) for i, n in enumerate(sizes)))
            attempt += len(sizes)
            if not any(answered):
                raise RuntimeError(f"{self.base_url} answered with no completion")

    async def _request(self, client: Any, prompt: str, n: int, params: SamplingParams, seed: int) -> list[GeneratedCompletion]:
        common: dict[str, Any] = {
            "model": self.name, "n": n, "max_tokens": params.max_new_tokens, "seed": seed,
            "temperature": max(params.temperature, 0.0),
        }
        if not params.greedy:
            common["top_p"] = params.top_p
        stop = list(params.stop)[: self.stop_limit] if self.stop_limit else list(params.stop)
        try:
            return await self._create(client, prompt, params, common, stop)
        except self.openai.BadRequestError as exc:
            if len(stop) <= MAX_STOP_SEQUENCES or "stop" not in str(exc).lower():
                raise
            self.stop_limit = MAX_STOP_SEQUENCES  # the rest are applied here, after the fact
            return await self._create(client, prompt, params, common, stop[:MAX_STOP_SEQUENCES])

    async def _create(self, client: Any, prompt: str, params: SamplingParams, common: dict[str, Any],
                      stop: list[str]) -> list[GeneratedCompletion]:
        self.requests += 1
        if params.chat:
            response = await client.chat.completions.create(
                messages=[{"role": "user", "content": self.prompt_text(prompt, params)}], logprobs=True, **common)
            texts = [(choice.message.content or "", _chat_logprobs(choice)) for choice in response.choices]
        else:
            response = await client.completions.create(prompt=prompt, stop=stop or None, logprobs=1, **common)
            texts = [(choice.text or "", _completion_logprobs(choice)) for choice in response.choices]
        usage = getattr(response, "usage", None)
        self.generated_tokens += int(getattr(usage, "completion_tokens", 0) or 0)
        samples = []
        for text, logprobs in texts:
            completion = extract_code(text) if params.chat else truncate_at_stop(text, params.stop)
            sample = GeneratedCompletion(completion)
            if logprobs:
                sample.sum_logprob, sample.num_tokens = math.fsum(logprobs), len(logprobs)
            else:
                sample.has_logprobs = False
            samples.append(sample)
        return samples


def _completion_logprobs(choice: Any) -> list[float]:
    logprobs = getattr(choice, "logprobs", None)
    values = getattr(logprobs, "token_logprobs", None) or []
    return [float(v) for v in values if v is not None]


def _chat_logprobs(choice: Any) -> list[float]:
    logprobs = getattr(choice, "logprobs", None)
    content = getattr(logprobs, "content", None) or []
    return [float(token.logprob) for token in content if getattr(token, "logprob", None) is not None]
