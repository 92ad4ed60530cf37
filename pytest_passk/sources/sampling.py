"""Sampling parameters and text handling shared by every model backend (no torch here)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

__all__ = ["SERVED_PREFIX", "CODEX_STOP_SEQUENCES", "CHAT_INSTRUCTION", "Job", "ModelLoadError", "PromptTooLong",
           "SamplingParams", "GeneratedCompletion", "truncate_at_stop", "extract_code", "temperature_label"]

# ``--model openai:NAME``: a model behind an OpenAI-compatible server, not loaded here.
SERVED_PREFIX = "openai:"
# The stop sequences the Codex paper used for HumanEval (section 2.3).
CODEX_STOP_SEQUENCES = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
# What a chat model is asked with --passk-chat; the completion is the code of its reply.
CHAT_INSTRUCTION = "Complete the following Python function. Reply with the whole function in one ```python block.\n\n"


@dataclass(frozen=True)
class SamplingParams:
    """Everything besides the model and the prompt that decides a sample."""

    samples: int = 1
    temperature: float = 0.0  # 0: greedy
    top_p: float = 0.95
    max_new_tokens: int = 512
    seed: int = 0
    stop: tuple[str, ...] = CODEX_STOP_SEQUENCES
    chat: bool = False
    # The temperature study (``--passk-temperature 0.2,0.6,0.8``), ascending; empty for one temperature.
    study: tuple[float, ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    @property
    def temperatures(self) -> tuple[float, ...]:
        """Every temperature the run samples at, in the order its samples are numbered."""
        return self.study or (self.temperature,)

    def at(self, temperature: float) -> SamplingParams:
        """These parameters at one temperature of the study: what one backend call samples with."""
        return replace(self, temperature=temperature, study=())

    def identity(self) -> dict[str, Any]:
        """What goes into the cache key: not the sample count, so that asking for
        more samples later reuses the ones already drawn, nor the study's other
        temperatures, so that each temperature has its own entries."""
        data = asdict(self)
        del data["samples"], data["study"]
        if self.greedy:
            data["top_p"] = None  # irrelevant to greedy decoding
        return data


class ModelLoadError(Exception):
    """The model or tokenizer can't be loaded, or the server can't be used; the message is one line."""


class PromptTooLong(ModelLoadError):
    """A prompt and its new tokens do not fit the model's context; the message is one line."""


@dataclass(frozen=True)
class Job:
    """One prompt to sample ``count`` more completions for."""

    key: str
    prompt: str
    count: int
    name: str = ""  # the problem's task id, for messages


@dataclass
class GeneratedCompletion:
    completion: str
    sum_logprob: float = 0.0
    num_tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    has_logprobs: bool = True  # a served model may not return them

    @property
    def mean_logprob(self) -> float:
        return self.sum_logprob / self.num_tokens if self.num_tokens else 0.0

    def to_json(self) -> dict[str, Any]:
        """As cached and, with the task id added, as written to a completions file."""
        if not self.has_logprobs:
            return {"completion": self.completion}
        return {
            "completion": self.completion,
            "sum_logprob": self.sum_logprob,
            "mean_logprob": self.mean_logprob,
            "num_tokens": self.num_tokens,
        }


def temperature_label(temperature: float) -> str:
    """How a node id and the summary name a temperature: ``T0.8``, ``T0`` for greedy."""
    return f"T{temperature:g}"


def truncate_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """Cut ``text`` at the earliest occurrence of any stop sequence."""
    cut = len(text)
    for sequence in stop:
        if sequence:
            position = text.find(sequence)
            if position != -1:
                cut = min(cut, position)
    return text[:cut]


FENCED_CODE = re.compile(r"```[ \t]*(?:python|py|Python)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


def extract_code(reply: str) -> str:
    """The code of a chat reply: its first fenced block, else the whole reply."""
    match = FENCED_CODE.search(reply)
    return match.group(1) if match else reply
