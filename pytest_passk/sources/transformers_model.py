"""Sampling completions from a transformers causal LM, batched, on the controller.

torch and transformers are imported here only, and this module is imported only
when ``--model`` is given: evaluating a completions file needs neither.
"""

from __future__ import annotations

import hashlib
import inspect
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, StoppingCriteria, StoppingCriteriaList

from .sampling import (
    CHAT_INSTRUCTION,
    GeneratedCompletion,
    Job,
    ModelLoadError,
    PromptTooLong,
    SamplingParams,
    extract_code,
    truncate_at_stop,
)

__all__ = ["ModelLoadError", "TransformersSampler", "Job", "batch_for_memory", "replica_devices"]

# A GPU's batch, sized from its free memory: at most this many sequences, and this share of
# the free memory for their key/value caches and logits (the rest for activations).
MAX_GPU_BATCH = 1024
MEMORY_SHARE = 0.6

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".msgpack", ".h5")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "tokenizer.model",
                   "special_tokens_map.json", "chat_template.jinja")


def _digest_files(directory: Path, names: Callable[[Path], bool]) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and names(p)):
        digest.update(str(path.relative_to(directory)).encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


class TokenLogprobs:
    """Captures, at each step of ``generate``, the log-probability the model (not
    the temperature/top-p warped distribution) gave the token just chosen, and
    stops each sequence as soon as its completion contains a stop sequence."""

    def __init__(self, prompt_length: int, batch_size: int, tokenizer: Any, stop: tuple[str, ...],
                 device: torch.device) -> None:
        self.prompt_length = prompt_length
        self.eos_token_id = tokenizer.eos_token_id
        self.tokenizer = tokenizer
        self.stop = stop
        self.tail_tokens = max((len(s) for s in stop), default=0) + 2
        self.pending: torch.Tensor | None = None
        self.sums = torch.zeros(batch_size, dtype=torch.float64, device=device)
        self.counts = torch.zeros(batch_size, dtype=torch.long, device=device)
        self.done = torch.zeros(batch_size, dtype=torch.bool, device=device)

    def forward_hook(self, module: Any, args: Any, output: Any) -> None:
        logits = output.logits if hasattr(output, "logits") else output[0]
        self.pending = torch.log_softmax(logits[:, -1, :].float(), dim=-1)

    def criterion(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        chosen = input_ids[:, -1]
        live = ~self.done
        if self.pending is not None:
            logprob = self.pending.gather(1, chosen[:, None]).squeeze(1).double()
            self.sums += torch.where(live, logprob, torch.zeros_like(logprob))
        self.counts += live.long()
        if self.eos_token_id is not None:
            self.done |= live & (chosen == self.eos_token_id)  # generate pads the sequence from here on
            live = ~self.done
        if self.stop:
            # One copy from the device a step, not one per row: the live mask and every row's tail together.
            generated = input_ids[:, self.prompt_length :]
            tails = torch.cat([live[:, None].long(), generated[:, -self.tail_tokens :]], dim=1).tolist()
            rows = [row for row, tail in enumerate(tails) if tail[0]]
            if rows:
                texts = self.tokenizer.batch_decode([tails[row][1:] for row in rows], skip_special_tokens=True)
                stopped = [row for row, text in zip(rows, texts) if any(s in text for s in self.stop)]
                if stopped:
                    self.done[stopped] = True
        return self.done.clone()


class _Criterion(StoppingCriteria):
    def __init__(self, monitor: TokenLogprobs) -> None:
        self.monitor = monitor

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        return self.monitor.criterion(input_ids, scores, **kwargs)  # type: ignore[return-value]


def load_error(model: str, exc: BaseException) -> ModelLoadError:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ModelLoadError(f"--model {model}: cannot load model or tokenizer: {first_line}")


def out_of_memory(exc: BaseException) -> bool:
    """The device's memory ran out: CUDA's own error, or the CPU allocator's."""
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "can't allocate memory" in str(exc)


def batch_for_memory(config: Any, dtype: torch.dtype, tokens: int, free_bytes: int) -> int:
    """Sequences of ``tokens`` (prompt and new tokens) whose key/value caches and per-step
    logits fit in :data:`MEMORY_SHARE` of ``free_bytes``, at most :data:`MAX_GPU_BATCH`;
    rounded down to a multiple of 32 (a power of two below that), so that a little more or
    less free memory does not change the batches, and with them the samples a seed gives."""
    def first(*names: str) -> int | None:
        for name in names:
            value = getattr(config, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return None

    layers = first("num_hidden_layers", "n_layer", "num_layers") or 1
    heads = first("num_attention_heads", "n_head") or 1
    hidden = first("hidden_size", "n_embd", "d_model") or 1
    head_dim = first("head_dim") or max(1, hidden // heads)
    kv_heads = first("num_key_value_heads") or heads
    vocabulary = first("vocab_size") or 1
    element = torch.empty((), dtype=dtype).element_size()
    per_sequence = 2 * layers * kv_heads * head_dim * element * tokens + 3 * 4 * vocabulary  # logits, log-softmax, scores
    fitting = max(1, min(MAX_GPU_BATCH, int(free_bytes * MEMORY_SHARE) // per_sequence))
    return fitting // 32 * 32 if fitting >= 32 else 1 << (fitting.bit_length() - 1)


def replica_devices(model: str, device: str) -> list[str]:
    """The devices to put one replica each on: those listed (``cuda:0,cuda:1``, or ``cpu,cpu``
    to try the sharing on a CPU), or with ``auto`` every GPU, when there are several and a
    local model's weights fit in each with room to spare. Otherwise one (``device_map="auto"``
    shards a model over several GPUs)."""
    if "," in device:
        return [d.strip() for d in device.split(",") if d.strip()]
    count = torch.cuda.device_count() if device == "auto" and torch.cuda.is_available() else 0
    local = Path(model).expanduser()
    if count < 2 or not local.is_dir():
        return [device]
    weights = sum(p.stat().st_size for p in local.rglob("*") if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))
    smallest = min(torch.cuda.get_device_properties(i).total_memory for i in range(count))
    return [f"cuda:{i}" for i in range(count)] if weights < 0.5 * smallest else [device]


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    if dtype == "auto":
        if device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    try:
        return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
                "float16": torch.float16, "fp16": torch.float16}[dtype]
    except KeyError:
        raise ModelLoadError(f"--passk-dtype: unknown dtype {dtype!r} (auto, float32, bfloat16, float16)") from None


class TransformersSampler:
    """Samples completions in batches from ``model``, whose weights ``from_pretrained`` loads
    at the first sample to draw: a run whose samples are all cached never loads them."""

    def __init__(self, model: str, *, revision: str | None = None, dtype: str = "auto", device: str = "auto",
                 trust_remote_code: bool = False, batch_size: int | None = None) -> None:
        self.name = model
        self.revision = revision
        self.trust_remote_code = trust_remote_code
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        local = Path(model).expanduser()
        self.local_path = local.resolve() if local.exists() else None
        if model.startswith((".", "/", "~")) and self.local_path is None:
            raise ModelLoadError(f"--model {model}: no such directory")
        if self.local_path is not None and not any(p.name.endswith(WEIGHT_SUFFIXES) for p in self.local_path.rglob("*")):
            # Checked now: the weights load only at the first sample to draw.
            raise ModelLoadError(f"--model {model}: cannot load model or tokenizer: no weights "
                                 f"({', '.join('*' + suffix for suffix in WEIGHT_SUFFIXES[:2])}) in {self.local_path}")
        self.source = str(self.local_path) if self.local_path else model
        self.multi_gpu = device == "auto" and self.device == "cuda" and torch.cuda.device_count() > 1
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.source, revision=revision, trust_remote_code=trust_remote_code)
            self.config = AutoConfig.from_pretrained(self.source, revision=revision, trust_remote_code=trust_remote_code)
        except (OSError, ValueError, KeyError, ImportError) as exc:
            raise load_error(model, exc) from None
        self.tokenizer.padding_side = "left"  # decoder-only: pad on the left so every prompt ends where generation starts
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        # On a GPU, unless given, the batch is sized from the memory free once the weights are in.
        self.sized_from_memory = batch_size is None and self.device.startswith("cuda")
        self.batch_size = batch_size or (256 if self.device.startswith("cuda") else 64)
        self.generated_tokens = 0
        self.weights_loaded = False
        self._model: Any = None
        # Where the time went: loading the weights, each batch (the first pays the warm-up).
        self.load_seconds = 0.0
        self.batch_seconds: list[float] = []
        self.samples_drawn = 0
        self.seed_offset = 0  # a replica's own seeds (see replicas.py)

    @property
    def model(self) -> Any:
        """The model, its weights loaded on first use."""
        if self._model is None:
            started = time.perf_counter()
            try:
                self._model = AutoModelForCausalLM.from_pretrained(
                    self.source,
                    revision=self.revision,
                    dtype=self.dtype,
                    trust_remote_code=self.trust_remote_code,
                    **({"device_map": "auto"} if self.multi_gpu else {}),
                )
            except (OSError, ValueError, KeyError, ImportError) as exc:
                raise load_error(self.name, exc) from None
            if not self.multi_gpu:
                self._model.to(self.device)
            self._model.eval()
            self.weights_loaded = True
            self.load_seconds = time.perf_counter() - started
        return self._model

    @property
    def context_length(self) -> int | None:
        """Tokens the model attends to, prompt and completion together, where its config says."""
        for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
            value = getattr(self.config, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return None

    def identity(self) -> dict[str, Any]:
        """What identifies the weights and tokenizer, for the sample cache."""
        if self.local_path is not None:
            weights = _digest_files(self.local_path, lambda p: p.name.endswith(WEIGHT_SUFFIXES) or p.name == "config.json")
            tokenizer = _digest_files(self.local_path, lambda p: p.name in TOKENIZER_FILES)
            return {"model": f"local:{weights}", "tokenizer": tokenizer, "dtype": str(self.dtype)}
        commit = getattr(self.config, "_commit_hash", None)
        return {"model": self.name, "revision": self.revision or commit or "main", "dtype": str(self.dtype)}

    def prompt_text(self, prompt: str, params: SamplingParams) -> str:
        if not params.chat:
            return prompt  # exactly as the problem gives it
        messages = [{"role": "user", "content": CHAT_INSTRUCTION + "```python\n" + prompt + "```"}]
        try:
            return str(self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
        except ValueError as exc:
            raise ModelLoadError(f"--passk-chat: {self.name}: the tokenizer has no usable chat template ({exc})") from None

    def check_context(self, jobs: Sequence[Job], lengths: dict[str, int], max_new_tokens: int) -> None:
        """Every prompt with its new tokens fits the model's context, before anything is generated."""
        context = self.context_length
        if context is None:
            return
        for job in jobs:
            if lengths[job.key] + max_new_tokens > context:
                raise PromptTooLong(f"passk: {job.name or 'a prompt'} does not fit {self.name}'s context: "
                                    f"{lengths[job.key]} prompt tokens + {max_new_tokens} new tokens "
                                    f"(--passk-max-new-tokens) > {context}")

    def _chunks(self, jobs: Sequence[Job]) -> list[Job]:
        """Split jobs so that no job has more samples than a batch holds."""
        pieces = []
        for job in jobs:
            for start in range(0, job.count, self.batch_size):
                pieces.append(Job(job.key, job.prompt, min(self.batch_size, job.count - start), job.name))
        return pieces

    def sample(self, jobs: Sequence[Job], params: SamplingParams,
               on_batch: Callable[[list[tuple[Job, GeneratedCompletion]]], None]) -> None:
        """Draw ``job.count`` samples per job; ``on_batch`` gets each finished batch at once
        (so a failure midway keeps what is done).

        A batch holds several prompts with the same number of samples each,
        prompts of similar length together (less padding). Each prompt is run
        through the model once and its key/value cache repeated for its samples,
        instead of computing the same prompt once per sample."""
        texts = {job.key: self.prompt_text(job.prompt, params) for job in jobs}
        lengths = {key: len(self.tokenizer(text)["input_ids"]) for key, text in texts.items()}
        self.check_context(jobs, lengths, params.max_new_tokens)
        if jobs:
            self.model  # the weights load now, apart from the first batch's time
        if self.sized_from_memory and jobs:
            self.sized_from_memory = False  # once: the OOM halving below may lower it later
            device = next(self.model.parameters()).device
            free, _ = torch.cuda.mem_get_info(device)
            self.batch_size = batch_for_memory(self.config, self.dtype, max(lengths.values()) + params.max_new_tokens, free)

        def order(job: Job) -> tuple[int, int, str]:
            return (-job.count, lengths[job.key], job.key)

        pending = sorted(self._chunks(jobs), key=order)
        batch_index = 0
        while pending:
            repeats = pending[0].count
            unit = [job for job in pending[: max(1, self.batch_size // repeats)] if job.count == repeats]
            started = time.perf_counter()
            try:
                samples = self._generate([texts[job.key] for job in unit], repeats, params,
                                         seed=params.seed + self.seed_offset + batch_index)
            except (torch.cuda.OutOfMemoryError, RuntimeError) as exc:
                if not out_of_memory(exc) or self.batch_size == 1:
                    raise
                self.batch_size = max(1, self.batch_size // 2)  # halve and retry what is left
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                pending = sorted(self._chunks(pending), key=order)
                continue
            self.batch_seconds.append(time.perf_counter() - started)
            self.samples_drawn += len(samples)
            rows = [job for job in unit for _ in range(repeats)]
            on_batch(list(zip(rows, samples)))
            pending = pending[len(unit) :]
            batch_index += 1

    def _prompt_cache(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, repeats: int) -> tuple[str, Any] | None:
        """Run the prompts but their last token once, and repeat the cache for each sample.
        ``generate`` then starts from the last prompt token. None where the model
        or its cache can't do this (generate then runs the prompts itself)."""
        if input_ids.shape[1] < 2:
            return None
        position_ids = attention_mask.long().cumsum(-1) - 1
        position_ids.masked_fill_(attention_mask == 0, 1)  # as generate computes them for left padding
        parameters = inspect.signature(self.model.forward).parameters
        name = "cache" if "cache" in parameters else "past_key_values"
        try:
            output = self.model(
                input_ids=input_ids[:, :-1], attention_mask=attention_mask[:, :-1], position_ids=position_ids[:, :-1],
                use_cache=True,
            )
        except TypeError:
            return None
        cache = getattr(output, "cache", None) or getattr(output, "past_key_values", None)
        if cache is None or not hasattr(cache, "batch_repeat_interleave"):
            return None
        if repeats > 1:
            cache.batch_repeat_interleave(repeats)
        return name, cache

    @torch.inference_mode()
    def _generate(self, prompts: list[str], repeats: int, params: SamplingParams, seed: int) -> list[GeneratedCompletion]:
        encoded = self.tokenizer(prompts, return_tensors="pt", padding=True)
        first_device = next(self.model.parameters()).device
        input_ids = encoded["input_ids"].to(first_device)
        attention_mask = encoded["attention_mask"].to(first_device)
        cached = self._prompt_cache(input_ids, attention_mask, repeats)
        input_ids = input_ids.repeat_interleave(repeats, dim=0)
        attention_mask = attention_mask.repeat_interleave(repeats, dim=0)
        stop = () if params.chat else params.stop
        monitor = TokenLogprobs(input_ids.shape[1], input_ids.shape[0], self.tokenizer, stop, first_device)
        hook = self.model.register_forward_hook(monitor.forward_hook)
        if first_device.type == "cuda" and not self.multi_gpu:  # this device's generator: replicas draw their own
            with torch.cuda.device(first_device):
                torch.cuda.manual_seed(seed)
        else:
            torch.manual_seed(seed)
        sampling: dict[str, Any] = (
            {"do_sample": False}
            if params.greedy
            else {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p, "top_k": 0}
        )
        if cached is not None:
            sampling[cached[0]] = cached[1]
        try:
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                max_new_tokens=params.max_new_tokens,
                stopping_criteria=StoppingCriteriaList([_Criterion(monitor)]),
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
                **sampling,
            )
        finally:
            hook.remove()
        generated = output[:, input_ids.shape[1] :]
        samples = []
        for row in range(input_ids.shape[0]):
            text = str(self.tokenizer.decode(generated[row], skip_special_tokens=True))
            completion = extract_code(text) if params.chat else truncate_at_stop(text, params.stop)
            tokens = int(monitor.counts[row])
            samples.append(GeneratedCompletion(completion, float(monitor.sums[row]), tokens))
            self.generated_tokens += tokens
        return samples
