"""The two figures of a HumanEval+ run, from one execution per sample.

EvalPlus reports the base tests alone ("HumanEval (base)") and base and plus tests
together ("HumanEval+"). The check runs the base inputs first and says where a
sample failed (:data:`~.check.PLUS_FAILURE`), so a sample that failed only at a
plus input passed the base tests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from ..verdicts import SampleRecord, Verdict
from .check import PLUS_FAILURE

__all__ = ["base_suite", "base_records"]


def base_suite(suite: str) -> str:
    """HumanEval+ -> HumanEval (base)."""
    return suite.removesuffix("+") + " (base)"


def base_records(records: Iterable[SampleRecord], plus_suites: set[str]) -> list[SampleRecord]:
    """Each HumanEval+ sample's record as the base tests judge it, in the base figure's suite."""
    based = []
    for record in records:
        if record.suite not in plus_suites:
            continue
        base = dataclasses.replace(record, suite=base_suite(record.suite))
        if record.verdict is Verdict.FAILED and record.message.startswith(PLUS_FAILURE):
            base = dataclasses.replace(base, verdict=Verdict.PASSED, message="")
        based.append(base)
    return based
