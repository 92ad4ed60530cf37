"""Per-run state, kept in ``config.stash`` (never in globals: pytester runs many sessions in one process)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .completions import SamplePlan
from .executor import Limits, SampleRunner
from .generation import GenerationReport, ModelOptions
from .sampling import SamplingParams
from .summary import SampleRecord, SuiteSummary

if TYPE_CHECKING:
    from .collect import SampleItem

__all__ = ["Settings", "SETTINGS_KEY", "PLAN_KEY", "sample_runner", "group_of"]


@dataclass(frozen=True)
class Settings:
    """The options of one run, resolved from the command line and the ini file."""

    limits: Limits
    ks: tuple[int, ...]
    completions: Path | None
    json_report: Path | None
    env_passthrough: tuple[str, ...]
    deduplicate: bool = True
    model: ModelOptions | None = None
    sampling: SamplingParams = field(default_factory=SamplingParams)
    cache_dir: Path = Path(".passk")
    regenerate: bool = False
    save_completions: Path | None = None


@dataclass
class Results:
    """What the controller gathers from reports, and what it concludes."""

    records: list[SampleRecord] = field(default_factory=list)
    summaries: list[SuiteSummary] = field(default_factory=list)
    generation: GenerationReport | None = None


SETTINGS_KEY = pytest.StashKey[Settings]()
PLAN_KEY = pytest.StashKey[SamplePlan]()
# The samples file the controller hands to xdist workers ("" for reference solutions).
SAMPLES_PATH_KEY = pytest.StashKey[str]()
RUNNER_KEY = pytest.StashKey[SampleRunner]()
RESULTS_KEY = pytest.StashKey[Results]()
# Items of one problem that will run in this process, when the scheduler guarantees it.
GROUPS_KEY = pytest.StashKey[dict[tuple[str, str], list["SampleItem"]]]()


def sample_runner(config: pytest.Config) -> SampleRunner:
    """This process's runner, started on first use."""
    if RUNNER_KEY not in config.stash:
        settings = config.stash[SETTINGS_KEY]
        # Each process that runs samples gets its share of the cores for them.
        workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
        parallel = max(1, (os.cpu_count() or 1) // workers)
        config.stash[RUNNER_KEY] = SampleRunner(settings.limits, settings.env_passthrough, parallel, settings.deduplicate)
    return config.stash[RUNNER_KEY]


def group_of(item: SampleItem) -> list[SampleItem]:
    groups = item.config.stash.get(GROUPS_KEY, {})
    return groups.get((str(item.path), item.problem.task_id), [])
