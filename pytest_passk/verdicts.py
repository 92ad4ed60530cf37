"""The verdict on a sample and the one record of it that travels everywhere.

A :class:`SampleRecord` is made by the runner from the fork server's reply (or from
the journal of an interrupted run), travels from an xdist worker to the controller
inside the item's report, is counted by :mod:`pytest_passk.scoring` and becomes a row
of the JSON report. Where a format forces another shape (a report's
``user_properties``, the journal's line, the JSON row), the conversion is a method here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from .sandbox.wire import Verdict

__all__ = ["Verdict", "SampleRecord", "SampleId"]

# (suite, task id, sample index): a sample, wherever it runs.
SampleId = tuple[str, str, int]


@dataclass(frozen=True)
class SampleRecord:
    """One evaluated sample."""

    suite: str
    task_id: str
    index: int
    verdict: Verdict
    message: str
    seconds: float
    shared: bool = False  # the verdict of an identical completion's execution
    resumed: bool = False  # the verdict an interrupted run recorded
    temperature: float | None = None  # the sampling temperature, where known (a model run, a file's field)

    @property
    def sample_id(self) -> SampleId:
        return (self.suite, self.task_id, self.index)

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASSED

    @property
    def counted(self) -> bool:
        """Whether pass@k counts it: a harness error says nothing about the sample."""
        return self.verdict is not Verdict.ERROR

    def for_sample(self, index: int) -> SampleRecord:
        """This verdict given to another sample of the problem with the same completion."""
        return replace(self, index=index, shared=True)

    def at_temperature(self, temperature: float | None) -> SampleRecord:
        """This verdict as the sample drawn at ``temperature`` has it (the runner knows
        programs, not how they were sampled)."""
        return self if temperature == self.temperature else replace(self, temperature=temperature)

    def to_properties(self) -> list[Any]:
        """As it travels in a report's ``user_properties`` (xdist sends only plain data)."""
        return [self.suite, self.task_id, self.index, self.verdict.value, self.message, self.seconds,
                self.shared, self.resumed, self.temperature]

    @classmethod
    def from_properties(cls, values: list[Any]) -> SampleRecord:
        suite, task_id, index, verdict, message, seconds, shared, resumed, temperature = values
        return cls(suite, task_id, index, Verdict(verdict), message, seconds, shared, resumed, temperature)

    def to_json(self) -> dict[str, Any]:
        """A row of the JSON report."""
        return asdict(self) | {"verdict": self.verdict.value}
