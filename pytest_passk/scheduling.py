"""xdist scheduling that gives each problem's samples to one worker, decided in
advance, so that a worker knows which samples it will run next and can start
them early (imported only with xdist)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath
from typing import Any

from xdist.scheduler import LoadScopeScheduling

from .batches import BATCH_CHANNELS, RUN_SESSION, replay, samples_in
from .problems import is_problem_file

__all__ = ["ProblemScheduling", "problem_scope", "owned_scopes", "costliest_first"]


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


def costliest_first(items: list[Any], order: Sequence[tuple[str, str]]) -> None:
    """Order the collection's problems as ``order`` (suite and task id) ranks them: by what the
    reference took on them (HumanEval+'s), the costliest first, as the controller measured it
    once for every worker (each timing them itself would order them apart, and xdist needs one
    collection). Done before the collection is dealt: each worker starts its long samples early,
    and what is left at the end is short, for a worker whose own ran out to take over (in file
    order, one worker was dealt 17 s of HumanEval+'s seven longest, the other 10). A stable
    sort: problems ``order`` leaves out (of unknown cost, ordinary tests) keep their order, last."""
    if not order:
        return
    rank = {key: position for position, key in enumerate(order)}
    keys = [rank.get((problem.suite, problem.task_id), len(rank)) if (problem := getattr(item, "problem", None))
            else len(rank) for item in items]
    items[:] = [items[i] for i in sorted(range(len(items)), key=keys.__getitem__)]


def worker_index(workerid: str) -> int:
    return int(workerid.removeprefix("gw"))


class ProblemScheduling(LoadScopeScheduling):  # type: ignore[misc]
    """Load balancing in units of one problem. Each worker first gets the problems
    dealt to it (see :func:`scope_owners`), then helps with others' once its own
    run out (those their fork servers have not started, the last first), so a slow
    problem still can't hold the run up. A worker runs a problem's
    samples as one item and sends their records on its batch channel; when xdist marks
    that item complete, they are reported here, sample by sample (:mod:`pytest_passk.batches`)."""

    def __init__(self, config: Any, log: Any = None) -> None:
        super().__init__(config, log)
        self._owners: dict[str, int] = {}
        self._positions: dict[str, int] = {}
        # Items assigned to each node and not yet complete, counted as they change: xdist
        # recounts every assigned item at each completion (quadratic in a problem's samples).
        self._pending: dict[Any, int] = {}

    def _split_scope(self, nodeid: str) -> str:
        return problem_scope(nodeid)

    def add_node_collection(self, node: Any, collection: Any) -> None:
        super().add_node_collection(node, collection)
        # xdist counts the items it schedules; the terminal's progress counts samples.
        samples = sum(samples_in(nodeid) or 1 for nodeid in collection)
        session = self.config.stash.get(RUN_SESSION, None)
        if session is not None:
            session.testscollected = samples

    def mark_test_complete(self, node: Any, item_index: int, duration: float = 0) -> None:
        nodeid = self.registered_collections[node][item_index]
        if samples_in(nodeid) is not None:
            replay(self.config, node, self.config.stash[BATCH_CHANNELS][node].batch())
        work_unit = self.assigned_work[node][self._split_scope(nodeid)]
        if not work_unit[nodeid]:
            work_unit[nodeid] = True
            self._pending[node] -= 1
        self._reschedule(node)

    def _reschedule(self, node: Any) -> None:
        """Top a node up to three pending items, and tell it when nothing more will come: an xdist
        worker runs an item only once it knows the next one or that there is none, and a problem
        is one item (a worker that replaced a dead one got one problem and waited for ever)."""
        if node.shutting_down:
            return
        while self.workqueue and self._pending.get(node, 0) <= 2:
            if not self._assign_work_unit(node):
                node.shutdown()  # what is left, other workers' fork servers have started: they finish it
                return
        if not self.workqueue:
            node.shutdown()

    def remove_node(self, node: Any) -> str | None:
        """A node that died mid-problem: xdist puts the problem back in the queue whole (its
        samples' records never left the worker), so another worker runs it and no verdict is lost."""
        self._pending.pop(node, None)
        link = self.config.stash.get(BATCH_CHANNELS, {}).get(node)
        if link is not None:
            link.started.clear()  # what it started is any worker's to run again
        return super().remove_node(node)  # type: ignore[no-any-return]

    def take_over(self) -> str | None:
        """Another worker's problem for one whose own ran out: the last in the queue (its owner
        reaches it last) that the owner's fork server has not started. The owner submitted it
        ahead, so it is told to drop what of it has not started (see Worker.taken_over)."""
        links = {worker_index(node.workerinput["workerid"]): link
                 for node, link in self.config.stash.get(BATCH_CHANNELS, {}).items()}
        for scope in reversed(self.workqueue):
            owner = links.get(self._owners.get(scope, -1))
            if owner is None:
                return scope
            if scope not in owner.started:
                owner.taken(scope)
                return scope
        return None

    def _assign_work_unit(self, node: Any) -> bool:
        """Give ``node`` a problem: its own next one, else one taken over; False if none is left to take."""
        collection = self.registered_collections[node]
        if not self._owners:
            self._owners = scope_owners(collection, int(node.workerinput["workercount"]))
            # xdist looks each node id up with list.index: quadratic on 16,400 samples.
            self._positions = {nodeid: i for i, nodeid in enumerate(collection)}
        mine = worker_index(node.workerinput["workerid"])
        scope = next((s for s in self.workqueue if self._owners.get(s) == mine), None) or self.take_over()
        if scope is None:
            return False
        work_unit = self.workqueue.pop(scope)
        self.assigned_work.setdefault(node, {})[scope] = work_unit
        pending = [self._positions[nodeid] for nodeid, done in work_unit.items() if not done]
        self._pending[node] = self._pending.get(node, 0) + len(pending)
        node.send_runtest_some(pending)
        return True
