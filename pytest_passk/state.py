"""Per-run state, kept in ``config.stash`` (never in globals: pytester runs many sessions in one process)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .sources.completions import SamplePlan
from .sandbox.runner import IsolationReport, Limits, SampleRunner
from .gates import Baseline, Threshold
from .sources.generation import GenerationReport, ModelOptions
from .sandbox.journal import VerdictJournal
from .report.document import Analysis
from .sources.sampling import SamplingParams
from .scoring.summary import SampleRecord, SuiteSummary

if TYPE_CHECKING:
    from .items import SampleItem
    from .problems import Problem

__all__ = ["Settings", "SETTINGS_KEY", "PLAN_KEY", "RunOrder", "sample_runner"]


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
    isolation: str = "auto"
    resume: bool = False
    suspicious_passes: bool = False
    minimums: tuple[Threshold, ...] = ()
    baseline: Path | None = None
    max_drops: tuple[Threshold, ...] = ()
    require_significant: bool = False
    confidence: float | None = 0.95
    html_report: Path | None = None
    bleu: bool = True

    @property
    def gated(self) -> bool:
        return bool(self.minimums or self.max_drops)


@dataclass
class Results:
    """What the controller gathers from reports, and what it concludes."""

    records: list[SampleRecord] = field(default_factory=list)
    summaries: list[SuiteSummary] = field(default_factory=list)
    generation: GenerationReport | None = None
    isolation: IsolationReport | None = None
    journal: VerdictJournal | None = None
    baseline: Baseline | None = None
    analysis: Analysis = field(default_factory=Analysis)
    harness_errors: int = 0  # errors of the harness (not of samples): collection, dead workers, runner failures
    report_errors: list[str] = field(default_factory=list)  # reports that could not be written, one line each


SETTINGS_KEY = pytest.StashKey[Settings]()
PLAN_KEY = pytest.StashKey[SamplePlan]()
# The samples file the controller hands to xdist workers ("" for reference solutions).
SAMPLES_PATH_KEY = pytest.StashKey[str]()
RUNNER_KEY = pytest.StashKey[SampleRunner]()
RESULTS_KEY = pytest.StashKey[Results]()
RUN_ORDER_KEY = pytest.StashKey["RunOrder"]()
# The problems the controller found for this run's arguments.
REACHABLE_PROBLEMS_KEY = pytest.StashKey[list["Problem"]]()
# Those problems' files, by path under the rootdir, for execution workers on other hosts.
REMOTE_PROBLEM_FILES_KEY = pytest.StashKey[dict[str, bytes]]()
# Verdicts of an earlier run to resume from (verdict key -> verdict, message, seconds).
KNOWN_VERDICTS_KEY = pytest.StashKey[dict[str, tuple[str, str, float]]]()
# Samples submitted ahead of the one running: enough to keep the fork server busy
# while a hanging sample waits out its timeout.
LOOKAHEAD = 2048


@dataclass
class RunOrder:
    """What this process knows of the samples it will run next, to submit them ahead.

    Without xdist that is the whole ``session.items``; under xdist with
    per-problem scheduling, the samples of the problems dealt to this worker.
    Whatever the schedule, a worker runs all of a problem's samples (``groups``)
    and learns where it goes next from ``nextitem``.
    """

    items: list[SampleItem] = field(default_factory=list)
    position: dict[str, int] = field(default_factory=dict)
    groups: dict[tuple[str, str], list[SampleItem]] = field(default_factory=dict)
    # What was handed out already, so that each call returns only what is new:
    # this runs once per item, and the lookahead is thousands of items long.
    handed_groups: set[tuple[str, str]] = field(default_factory=set)
    handed_through: int = 0

    def upcoming(self, item: SampleItem, nextitem: pytest.Item | None) -> list[SampleItem]:
        """The samples to submit now, before ``item`` runs; none of them twice."""
        ahead: list[SampleItem] = []
        for anchor in (item, nextitem):
            if not isinstance(anchor, type(item)):
                continue
            if anchor.group_key not in self.groups:
                ahead.append(anchor)
            elif anchor.group_key not in self.handed_groups:
                self.handed_groups.add(anchor.group_key)
                ahead += self.groups[anchor.group_key]
        start = self.position.get(item.nodeid)
        if start is not None:
            end = min(len(self.items), start + 1 + LOOKAHEAD)
            ahead += self.items[max(start + 1, self.handed_through) : end]
            self.handed_through = max(self.handed_through, end)
        return ahead


def sample_runner(config: pytest.Config) -> SampleRunner:
    """This process's runner, started on first use."""
    if RUNNER_KEY not in config.stash:
        settings = config.stash[SETTINGS_KEY]
        # Each process that runs samples gets its share of the cores for them.
        workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
        parallel = max(1, (os.cpu_count() or 1) // workers)
        config.stash[RUNNER_KEY] = SampleRunner(
            settings.limits,
            settings.env_passthrough,
            parallel,
            settings.deduplicate,
            isolation=settings.isolation,
            known=config.stash.get(KNOWN_VERDICTS_KEY, {}),
            suspicious_passes=settings.suspicious_passes,
        )
    return config.stash[RUNNER_KEY]

