"""xdist scheduling that gives each problem's samples to one worker, decided in
advance, so that a worker knows which samples it will run next and can start
them early (imported only with xdist)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Any

from xdist.scheduler import LoadScopeScheduling

from .problems import is_problem_file

__all__ = ["ProblemScheduling", "problem_scope", "owned_scopes"]


def problem_scope(nodeid: str) -> str:
    """``problems/x.jsonl::HumanEval/0[17]`` -> ``problems/x.jsonl::HumanEval/0``; other tests stay alone."""
    path, sep, name = nodeid.partition("::")
    if sep and "::" not in name and is_problem_file(PurePosixPath(path)) and name.endswith("]"):
        return nodeid[: nodeid.rindex("[")]
    return nodeid


def scope_owners(nodeids: Iterable[str], workers: int) -> dict[str, int]:
    """Scopes in order of first appearance, dealt round-robin to the workers.

    Controller and workers compute this from the same collection, so each worker
    knows its own problems before any is sent to it."""
    owners: dict[str, int] = {}
    for nodeid in nodeids:
        scope = problem_scope(nodeid)
        if scope not in owners:
            owners[scope] = len(owners) % workers
    return owners


def owned_scopes(nodeids: Iterable[str], worker_index: int, workers: int) -> set[str]:
    return {scope for scope, owner in scope_owners(nodeids, workers).items() if owner == worker_index}


def worker_index(workerid: str) -> int:
    return int(workerid.removeprefix("gw"))


class ProblemScheduling(LoadScopeScheduling):  # type: ignore[misc]
    """Load balancing in units of one problem. Each worker first gets the problems
    dealt to it (see :func:`scope_owners`), then helps with others' once its own
    run out, so a slow problem still can't hold the run up."""

    def __init__(self, config: Any, log: Any = None) -> None:
        super().__init__(config, log)
        self._owners: dict[str, int] = {}
        self._positions: dict[str, int] = {}

    def _split_scope(self, nodeid: str) -> str:
        return problem_scope(nodeid)

    def _assign_work_unit(self, node: Any) -> None:
        collection = self.registered_collections[node]
        if not self._owners:
            self._owners = scope_owners(collection, int(node.workerinput["workercount"]))
            # xdist looks each node id up with list.index: quadratic on 16,400 samples.
            self._positions = {nodeid: i for i, nodeid in enumerate(collection)}
        mine = worker_index(node.workerinput["workerid"])
        scope = next((s for s in self.workqueue if self._owners.get(s) == mine), None)
        if scope is None:
            scope = next(iter(self.workqueue))
        work_unit = self.workqueue.pop(scope)
        self.assigned_work.setdefault(node, {})[scope] = work_unit
        node.send_runtest_some([self._positions[nodeid] for nodeid, done in work_unit.items() if not done])
