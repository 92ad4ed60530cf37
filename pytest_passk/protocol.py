"""A leaner runtest protocol for sample items.

pytest reports every item three times (setup, call, teardown); under xdist each
report is serialized, sent to the controller and replayed there, which costs as
much as running a sample. A sample has no fixtures, so its setup and teardown
say nothing unless they fail: this protocol still runs all three phases through
pytest's own hooks (capture, logging, skip marks, ``-x`` all work), but logs
the setup and teardown reports only when they are not plain passes.
"""

from __future__ import annotations

from typing import Literal

import pytest

__all__ = ["run_sample_protocol"]


def _run_phase(item: pytest.Item, when: Literal["setup", "call", "teardown"], always_report: bool,
               **kwargs: object) -> bool:
    """Run one phase; log its report if it failed, was skipped, or ``always_report``. True if it passed."""
    ihook = item.ihook
    hook = {"setup": ihook.pytest_runtest_setup, "call": ihook.pytest_runtest_call,
            "teardown": ihook.pytest_runtest_teardown}[when]
    reraise: tuple[type[BaseException], ...] = (pytest.exit.Exception,)
    if not item.config.getoption("usepdb", False):
        reraise += (KeyboardInterrupt,)
    call = pytest.CallInfo.from_call(lambda: hook(item=item, **kwargs), when=when, reraise=reraise)
    if call.excinfo is None and not always_report:
        return True
    report: pytest.TestReport = ihook.pytest_runtest_makereport(item=item, call=call)
    ihook.pytest_runtest_logreport(report=report)
    if call.excinfo is not None and report.failed and not isinstance(call.excinfo.value, pytest.skip.Exception):
        ihook.pytest_exception_interact(node=item, call=call, report=report)
    return report.passed


def run_sample_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    if _run_phase(item, "setup", always_report=False):
        _run_phase(item, "call", always_report=True)
    if item.session.shouldfail or item.session.shouldstop:
        nextitem = None
    _run_phase(item, "teardown", always_report=False, nextitem=nextitem)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
