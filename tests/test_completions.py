"""Reading a completions file (sources.completions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_passk.sources.completions import CompletionPlan, CompletionsFileError, read_completions

from .conftest import write_jsonl


def test_completions_file(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "s.jsonl",
        [
            {"task_id": "Toy/0", "completion": "a"},
            {"task_id": "Toy/1", "completion": None},
            {"task_id": "Toy/0", "completion": "b"},
            {"task_id": "Toy/1"},
        ],
    )
    plan = read_completions(path, {"Toy/0", "Toy/1"})
    assert plan.samples == {"Toy/0": ["a", "b"], "Toy/1": [None, None]}


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([{"task_id": "Toy/9", "completion": "x"}], "s.jsonl:1: unknown task_id 'Toy/9'"),
        ([{"task_id": "Toy/0", "completion": "x"}, {"completion": "x"}], "s.jsonl:2: missing or non-string task_id"),
        ([{"task_id": "Toy/0", "completion": 3}], "s.jsonl:1: completion must be a string or null"),
    ],
)
def test_bad_completions_file(tmp_path: Path, rows: list[dict[str, object]], expected: str) -> None:
    path = write_jsonl(tmp_path / "s.jsonl", rows)
    with pytest.raises(CompletionsFileError) as excinfo:
        read_completions(path, {"Toy/0"})
    assert expected in str(excinfo.value)


def test_missing_completions_file(tmp_path: Path) -> None:
    with pytest.raises(CompletionsFileError, match="not found"):
        read_completions(tmp_path / "nope.jsonl")


def test_plan_travels_to_workers_as_plain_data(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "s.jsonl", [{"task_id": "Toy/0", "completion": "a", "mean_logprob": -0.5},
                                              {"task_id": "Toy/0", "completion": None}])
    plan = read_completions(path)
    assert plan.extras == {"Toy/0": [{"mean_logprob": -0.5}, {}]}
    again = CompletionPlan.from_plain(plan.to_plain())
    assert again.samples == {"Toy/0": ["a", None]} and not again.reference
    assert again.extras == {}  # the extras stay with the controller, which reports them
