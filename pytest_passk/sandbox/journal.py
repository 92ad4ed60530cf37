"""Verdicts recorded as they arrive, so that an interrupted run can resume.

Each line is one execution's verdict under a key that hashes everything that
decides it (the problem's prompt, test and entry point, the completion, the
limits and the isolation mode), so a rerun finds exactly the verdicts that
still hold and executes the rest. Harness errors are never recorded: they say
nothing about the sample.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..problems import Problem

__all__ = ["VerdictJournal", "verdict_key", "HARNESS_ERROR"]

HARNESS_ERROR = "error"  # the verdict of a sample the harness failed to run


def verdict_key(problem: Problem, completion: str | None, timeout: float, memory: int, isolation: str) -> str:
    material = json.dumps([problem.prompt, problem.test, problem.entry_point, completion, timeout, memory, isolation])
    return hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()


class VerdictJournal:
    """An append-only JSONL file on the controller; a line is written whole or not read."""

    def __init__(self, path: Path, resume: bool) -> None:
        self.path = path
        self.known: dict[str, tuple[str, str, float]] = self._read() if resume else {}
        path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (0 if resume else os.O_TRUNC)
        self.fd: int | None = os.open(path, flags, 0o644)

    def _read(self) -> dict[str, tuple[str, str, float]]:
        known: dict[str, tuple[str, str, float]] = {}
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return known
        for line in text.splitlines():
            try:
                key, verdict, message, seconds = json.loads(line)
                known[str(key)] = (str(verdict), str(message), float(seconds))
            except (ValueError, TypeError):
                continue  # the line a killed run was writing
        return known

    def record(self, key: str, verdict: str, message: str, seconds: float) -> None:
        if self.fd is None or verdict == HARNESS_ERROR or key in self.known:
            return
        self.known[key] = (verdict, message, seconds)
        os.write(self.fd, (json.dumps([key, verdict, message, round(seconds, 6)]) + "\n").encode())

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
