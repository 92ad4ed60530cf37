"""xdist scheduling that keeps each problem's samples on one worker (imported only with xdist)."""

from __future__ import annotations

from pathlib import PurePosixPath

from xdist.scheduler import LoadScopeScheduling

from .problems import is_problem_file

__all__ = ["ProblemScheduling", "problem_scope"]


def problem_scope(nodeid: str) -> str:
    """``problems/x.jsonl::HumanEval/0[17]`` -> ``problems/x.jsonl::HumanEval/0``; other tests stay alone."""
    path, sep, name = nodeid.partition("::")
    if sep and "::" not in name and is_problem_file(PurePosixPath(path)) and name.endswith("]"):
        return nodeid[: nodeid.rindex("[")]
    return nodeid


class ProblemScheduling(LoadScopeScheduling):  # type: ignore[misc]
    """Load balancing in units of one problem, so that a worker can start all of a
    problem's samples at once and run them while pytest reports the first ones."""

    def _split_scope(self, nodeid: str) -> str:
        return problem_scope(nodeid)
