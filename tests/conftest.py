from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Callable

import pytest

pytest_plugins = ["pytester"]

# Tests that share a costly module fixture, kept on one xdist worker so that it is built once.
ONE_WORKER_MODULES = ("tests/test_served.py",)  # a model trained and `transformers serve` started: about a minute


class OneWorkerScheduler:
    """The xdist hook, registered only where xdist is (pytest rejects an unknown hook)."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: object) -> object:
        """The plugin's own tests, one scope each but for ONE_WORKER_MODULES; xdist sends the largest
        scopes first (--loadscope-reorder), so that module starts at once, beside the rest."""
        from xdist.scheduler import LoadScopeScheduling

        class OneWorkerModules(LoadScopeScheduling):  # type: ignore[misc]
            def _split_scope(self, nodeid: str) -> str:
                module = nodeid.split("::", 1)[0]
                return module if module in ONE_WORKER_MODULES else nodeid

        return OneWorkerModules(config, log)


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(OneWorkerScheduler(), "passk-tests-one-worker-scheduler")

# What the completions_file fixture gives: a writer of (task id, completion or None) rows.
Completions = Callable[[list[tuple[str, "str | None"]]], Path]

# A tiny benchmark of three problems in HumanEval's format, written by the tests.
TOY_PROBLEMS = [
    {
        "task_id": "Toy/0",
        "prompt": 'def add(a: int, b: int) -> int:\n    """Return a + b."""\n',
        "entry_point": "add",
        "canonical_solution": "    return a + b\n",
        "test": "\n\ndef check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-1, 1) == 0\n",
    },
    {
        "task_id": "Toy/1",
        "prompt": 'def double(x: int) -> int:\n    """Return 2 * x."""\n',
        "entry_point": "double",
        "canonical_solution": "    return 2 * x\n",
        "test": "\n\ndef check(candidate):\n    assert candidate(2) == 4\n    assert candidate(0) == 0\n",
    },
    {
        "task_id": "Toy/2",
        "prompt": 'def first(xs: list) -> object:\n    """Return the first element of xs."""\n',
        "entry_point": "first",
        "test": "\n\ndef check(candidate):\n    assert candidate([5, 6]) == 5\n",
    },
]


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def toy_problems(pytester: pytest.Pytester) -> Path:
    """``problems/toy.jsonl`` in the pytester directory; Toy/2 has no reference solution."""
    return write_jsonl(pytester.path / "problems" / "toy.jsonl", TOY_PROBLEMS)


@pytest.fixture
def completions_file(pytester: pytest.Pytester) -> Completions:
    def make(samples: list[tuple[str, str | None]], name: str = "samples.jsonl") -> Path:
        return write_jsonl(pytester.path / name, [{"task_id": t, "completion": c} for t, c in samples])

    return make


def read_report(path: Path) -> dict[str, object]:
    return json.loads(path.read_text(encoding="utf-8"))


def free_port() -> int:
    """A loopback port nothing listens on (for servers the tests start)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
