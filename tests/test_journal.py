"""The verdict journal an interrupted run resumes from (sandbox.journal)."""

from __future__ import annotations

from pathlib import Path

from pytest_passk.problems import Problem
from pytest_passk.sandbox.journal import JournalEntry, VerdictJournal, verdict_key
from pytest_passk.verdicts import SampleRecord, Verdict

PROBLEM = Problem("T/0", "def f():\n", "f", "def check(c):\n    assert c() == 1\n", "T")


def record(verdict: Verdict, index: int = 0) -> SampleRecord:
    return SampleRecord("T", "T/0", index, verdict, f"{verdict} message", 0.25)


def test_recorded_verdicts_are_read_back_when_resuming(tmp_path: Path) -> None:
    path = tmp_path / "j" / "verdicts.jsonl"
    journal = VerdictJournal(path, resume=False)
    journal.record("k1", record(Verdict.FAILED))
    journal.record("k2", record(Verdict.ERROR))  # the harness's failure: says nothing, not kept
    journal.record("k1", record(Verdict.PASSED))  # a key is recorded once
    journal.close()
    with path.open("a") as out:
        out.write('["k3", "passed", "cut short')  # the line a killed run was writing
    resumed = VerdictJournal(path, resume=True)
    assert resumed.known == {"k1": JournalEntry(Verdict.FAILED, "failed message", 0.25)}
    assert resumed.known["k1"].for_sample("T", "T/0", 7) == SampleRecord(
        "T", "T/0", 7, Verdict.FAILED, "failed message", 0.25, resumed=True)
    resumed.close()
    assert VerdictJournal(path, resume=False).known == {}  # a fresh run starts a fresh journal
    assert path.read_text() == ""


def test_the_key_changes_with_everything_that_decides_a_verdict() -> None:
    base = verdict_key(PROBLEM, "    return 1\n", 3.0, 1 << 30, "auto")
    assert base == verdict_key(PROBLEM, "    return 1\n", 3.0, 1 << 30, "auto")
    others = {
        verdict_key(PROBLEM, "    return 2\n", 3.0, 1 << 30, "auto"),
        verdict_key(PROBLEM, None, 3.0, 1 << 30, "auto"),
        verdict_key(PROBLEM, "    return 1\n", 5.0, 1 << 30, "auto"),
        verdict_key(PROBLEM, "    return 1\n", 3.0, 1 << 20, "auto"),
        verdict_key(PROBLEM, "    return 1\n", 3.0, 1 << 30, "basic"),
        verdict_key(Problem("T/0", "def f():\n", "f", "def check(c):\n    assert c() == 2\n", "T"),
                    "    return 1\n", 3.0, 1 << 30, "auto"),
    }
    assert base not in others and len(others) == 6
