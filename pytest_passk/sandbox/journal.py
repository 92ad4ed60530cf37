"""Verdicts recorded as they arrive, so that an interrupted run can resume.

The controller writes one line per sample's verdict under a key that hashes
everything that decides it (the way of judging, the problem's prompt, test and
entry point, the completion, the limits and the isolation mode), so a rerun finds exactly the
verdicts that still hold and executes the rest. Harness errors are never
recorded: they say nothing about the sample.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..problems import Problem
from ..verdicts import SampleRecord, Verdict

__all__ = ["VerdictJournal", "JournalEntry", "verdict_key"]


# How a verdict is reached; a journal written under another way of judging is not reused.
JUDGING = "trusted-check-1"


@functools.lru_cache(maxsize=4096)
def _problem_digest(prompt: str, test: str, entry_point: str, data: str) -> Any:
    """What the key hashes of a problem (its data can be megabytes: HumanEval+'s), hashed once;
    a problem without data as before there was any, so that its journal stays valid."""
    hashed = [JUDGING, prompt, test, entry_point] + ([data] if data else [])
    return hashlib.sha256(json.dumps(hashed).encode("utf-8", "surrogatepass"))


def verdict_key(problem: Problem, completion: str | None, timeout: float, memory: int, isolation: str) -> str:
    if problem.timeout is not None:  # a problem's own deadline (HumanEval+'s) overrides the run's
        timeout = problem.timeout
    digest = _problem_digest(problem.prompt, problem.test, problem.entry_point, problem.data).copy()
    digest.update(json.dumps([completion, timeout, memory, isolation]).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


@dataclass(frozen=True)
class JournalEntry:
    """A recorded verdict: of a problem and completion, not of a sample index."""

    verdict: Verdict
    message: str
    seconds: float

    def for_sample(self, suite: str, task_id: str, index: int) -> SampleRecord:
        return SampleRecord(suite, task_id, index, self.verdict, self.message, self.seconds, resumed=True)


class VerdictJournal:
    """An append-only JSONL file, ``[key, verdict, message, seconds]`` a line; a line is
    written whole or not read."""

    def __init__(self, path: Path, resume: bool) -> None:
        self.path = path
        self.known: dict[str, JournalEntry] = self._read() if resume else {}
        path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (0 if resume else os.O_TRUNC)
        self.fd: int | None = os.open(path, flags, 0o644)

    def _read(self) -> dict[str, JournalEntry]:
        known: dict[str, JournalEntry] = {}
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return known
        for line in text.splitlines():
            try:
                key, verdict, message, seconds = json.loads(line)
                known[str(key)] = JournalEntry(Verdict(verdict), str(message), float(seconds))
            except (ValueError, TypeError):
                continue  # the line a killed run was writing, or one of an older format
        return known

    def record(self, key: str, record: SampleRecord) -> None:
        if self.fd is None or not record.counted or key in self.known:
            return
        self.known[key] = JournalEntry(record.verdict, record.message, record.seconds)
        os.write(self.fd, (json.dumps([key, record.verdict.value, record.message, record.seconds]) + "\n").encode())

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
