"""Tiny models built here, saved with save_pretrained and loaded as a user's model is
(through --model PATH, or served by ``transformers serve``)."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from pytest_passk.sources.sampling import CODEX_STOP_SEQUENCES  # noqa: E402

EOS = "<|endoftext|>"
ADD_PROMPT = 'def add(a: int, b: int) -> int:\n    """Return the sum of a and b.\n    >>> add(2, 3)\n    5\n    """\n'
ADD_BODY = "    return a + b\n"
PROBLEM_FILE = (
    f"PROMPT = {ADD_PROMPT!r}\n\n"
    "def check(candidate):\n"
    "    assert candidate(2, 3) == 5\n"
    "    assert candidate(-4, 4) == 0\n"
)
OTHER_PROMPTS = {
    "problem_neg.py": 'def neg(x: int) -> int:\n    """Return -x."""\n',
    "problem_longer_name.py": 'def longest_common_prefix(words: list) -> str:\n    """Return the longest common prefix of all words, "" for none."""\n',
}


def build_tokenizer(directory: Path) -> transformers.PreTrainedTokenizerFast:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    corpus = [ADD_PROMPT + ADD_BODY, *OTHER_PROMPTS.values(), *CODEX_STOP_SEQUENCES, "return a + b - x * 2"] * 5
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(corpus, trainer)
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=EOS, pad_token=EOS)
    fast.save_pretrained(directory)
    return fast


def build_model(directory: Path, tokenizer: transformers.PreTrainedTokenizerFast) -> transformers.GPT2LMHeadModel:
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=len(tokenizer), n_positions=256, n_embd=64, n_layer=2, n_head=2,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    return transformers.GPT2LMHeadModel(config)


@pytest.fixture(scope="module")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GPT-2 of random weights with a byte-level BPE tokenizer, saved with save_pretrained."""
    directory = tmp_path_factory.mktemp("random-gpt2")
    tokenizer = build_tokenizer(directory)
    build_model(directory, tokenizer).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GPT-2 trained here, in seconds, to answer ADD_PROMPT with ADD_BODY and then a new function.

    It learns exactly the token sequence generation sees (the prompt tokenized
    alone, then the completion), so greedy decoding through the real generate
    path must give back ADD_BODY, and only a correct stop-sequence cut passes."""
    directory = tmp_path_factory.mktemp("trained-gpt2")
    tokenizer = build_tokenizer(directory)
    model = build_model(directory, tokenizer)
    prompt_ids = tokenizer(ADD_PROMPT)["input_ids"]
    completion_ids = tokenizer(ADD_BODY + "\ndef helper():\n    pass\n")["input_ids"]
    sequence = torch.tensor([prompt_ids + completion_ids])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(300):
        loss = model(sequence, labels=sequence).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if loss.item() < 0.01:
            break
    model.save_pretrained(directory)
    return directory


def write_problems(pytester: pytest.Pytester) -> None:
    pytester.makefile(".py", problem_add=PROBLEM_FILE)
    for name, prompt in OTHER_PROMPTS.items():
        (pytester.path / name).write_text(f"PROMPT = {prompt!r}\n\ndef check(candidate):\n    assert candidate is not None\n")
