"""pass@k and the gates as properties of the suite in ``--junitxml``, for CI systems to show."""

from __future__ import annotations

import pytest

from ..gates import GateVerdicts
from ..scoring.summary import SuiteSummary

__all__ = ["add_junit_properties"]


def add_junit_properties(config: pytest.Config, summaries: list[SuiteSummary], gates: GateVerdicts) -> None:
    # pytest registers its junitxml plugin under no public name: found by its class.
    junit = next((p for p in config.pluginmanager.get_plugins() if type(p).__name__ == "LogXML"
                  and hasattr(p, "add_global_property")), None)
    if junit is None:
        return
    for summary in summaries:
        for metric, value in summary.pass_at_k.items():
            junit.add_global_property(f"passk:{summary.label}:{metric}", f"{value:.6f}")
            if metric in summary.intervals:
                low, high = summary.intervals[metric]
                junit.add_global_property(f"passk:{summary.label}:{metric}:interval", f"{low:.6f} {high:.6f}")
    for gate in gates.outcomes:
        junit.add_global_property("passk:gate", gate.line)
