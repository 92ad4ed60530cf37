"""Where samples come from: reference solutions or a completions file.

The completions format is that of OpenAI's evaluator: one JSON object a line,
``{"task_id": ..., "completion": ...}``, several lines per task for n samples;
a task's samples are numbered in file order. An optional ``temperature`` on every
line groups a task's samples by the temperature they were drawn at (a temperature
study sampled elsewhere). Model backends write the same format; the controller
reads the file once and hands test processes the plan.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any
from pathlib import Path

from ..problems import Problem, ProblemFileError, iter_jsonl

__all__ = ["CompletionPlan", "CompletionsFileError", "read_completions"]


SAMPLE_EXTRAS = ("sum_logprob", "mean_logprob", "num_tokens")


class CompletionsFileError(Exception):
    """A completions file that can't be used; the message is one line."""


@dataclass
class CompletionPlan:
    """The completions to evaluate, per task id, in sample-index order.

    ``None`` stands for a null or missing completion (a failed sample); with
    ``reference``, each problem's reference solution is its one sample.
    """

    samples: dict[str, list[str | None]] = field(default_factory=dict)
    reference: bool = False
    # Per sample, what a model backend recorded beside the text (log-probabilities, token count).
    extras: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Per sample, the temperature it was drawn at, where known (a model run, a file's field).
    temperatures: dict[str, list[float | None]] = field(default_factory=dict)

    @property
    def skip_reason(self) -> str:
        if self.reference:
            return "no reference solution (evaluate samples with --passk-completions or --model)"
        return "no completions for this problem"

    def add(self, task_id: str, completion: str | None, recorded: dict[str, Any],
            temperature: float | None = None) -> None:
        """The task's next sample, what a model recorded beside its text (log-probabilities),
        and the temperature it was drawn at."""
        self.samples.setdefault(task_id, []).append(completion)
        self.extras.setdefault(task_id, []).append({k: recorded[k] for k in SAMPLE_EXTRAS if k in recorded})
        self.temperatures.setdefault(task_id, []).append(temperature)

    def for_problem(self, problem: Problem) -> list[str | None]:
        if self.reference:
            return [] if problem.canonical_solution is None else [problem.canonical_solution]
        return self.samples.get(problem.task_id, [])

    def temperatures_for(self, problem: Problem) -> list[float | None]:
        """Each sample's temperature, in index order (None where unknown)."""
        known = self.temperatures.get(problem.task_id, [])
        return [known[i] if i < len(known) else None for i in range(len(self.for_problem(problem)))]

    @property
    def study(self) -> bool:
        """Whether the samples were drawn at more than one temperature: then node ids and
        the summary name each sample's temperature."""
        return len({t for temps in self.temperatures.values() for t in temps}) > 1

    def by_task(self, problems: list[Problem]) -> dict[str, list[str | None]]:
        """Every problem's sample texts (the reference solution for a self-check)."""
        if not self.reference:
            return self.samples
        return {p.task_id: [p.canonical_solution] for p in problems if p.canonical_solution is not None}

    def write_jsonl(self, path: Path) -> None:
        """In the completions format, with what the model recorded beside each text."""
        with path.open("w", encoding="utf-8") as out:
            for task_id, completions in self.samples.items():
                recorded = self.extras.get(task_id, [])
                for index, completion in enumerate(completions):
                    extras = recorded[index] if index < len(recorded) else {}
                    row = {"completion": completion, **extras, "task_id": task_id}
                    temperature = self.temperatures.get(task_id, [])[index:index + 1]
                    if temperature and temperature[0] is not None:
                        row["temperature"] = temperature[0]
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")

    def to_plain(self) -> dict[str, Any]:
        """What a test process needs of the plan, as plain data (xdist's ``workerinput``):
        the texts, not the extras only the controller reports."""
        return {"samples": self.samples, "reference": self.reference, "temperatures": self.temperatures}

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> CompletionPlan:
        return cls(samples=data["samples"], reference=data["reference"], temperatures=data["temperatures"])


def read_completions(path: Path, known_task_ids: Collection[str] | None = None) -> CompletionPlan:
    """Read a completions file; with ``known_task_ids``, reject lines for unknown tasks."""
    if not path.is_file():
        raise CompletionsFileError(f"{path}: completions file not found")
    plan = CompletionPlan()
    with_temperature: bool | None = None  # every line has a temperature, or none does
    first = 0
    try:
        for number, obj in iter_jsonl(path):
            task_id = obj.get("task_id")
            if not isinstance(task_id, str):
                raise CompletionsFileError(f"{path}:{number}: missing or non-string task_id")
            if known_task_ids is not None and task_id not in known_task_ids:
                raise CompletionsFileError(f"{path}:{number}: unknown task_id {task_id!r} (no such problem collected)")
            completion = obj.get("completion")
            if completion is not None and not isinstance(completion, str):
                raise CompletionsFileError(f"{path}:{number}: completion must be a string or null")
            temperature = obj.get("temperature")
            if with_temperature is None:
                with_temperature, first = temperature is not None, number
            if (temperature is not None) != with_temperature:
                raise CompletionsFileError(f"{path}:{number}: temperature {'missing' if with_temperature else 'given'}, "
                                           f"unlike line {first} (give every line a temperature, or none)")
            if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
                                            or not math.isfinite(temperature) or temperature < 0):
                raise CompletionsFileError(f"{path}:{number}: temperature must be a number >= 0, got {temperature!r}")
            plan.add(task_id, completion, obj, None if temperature is None else float(temperature))
    except ProblemFileError as exc:
        raise CompletionsFileError(str(exc)) from None
    if not plan.samples:
        raise CompletionsFileError(f"{path}: no completions in file")
    return plan
