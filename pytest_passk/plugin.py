"""pytest-passk's entry point (``pytest11``): options, collection of problem files, and the
objects that do the run's work: a :class:`~pytest_passk.controller.Controller` in the
process pytest was started in, a :class:`~pytest_passk.worker.Worker` in each process
that runs samples (both in one process without xdist)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .arguments import reconsider_rootdir
from .controller import CONTROLLER_KEY, Controller, GateExitStatus, XdistController
from .cpus import usable_cpus
from .items import ProblemFile
from .options import SETTINGS_KEY, add_options, read_settings
from .problems import is_problem_file
from .worker import WORKER_KEY, Worker


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    """``--passk-completions FILE`` must root the run where ``--passk-completions=FILE`` does."""
    reconsider_rootdir(early_config, parser, args)
    # Before xdist's pytest_cmdline_main asks how many workers -n auto means.
    manager = early_config.pluginmanager
    if manager.hasplugin("xdist") and not manager.hasplugin("passk-xdist-auto"):
        manager.register(XdistAutoWorkers(), "passk-xdist-auto")


class XdistAutoWorkers:
    """``-n auto``: a worker for each CPU this run may use (xdist counts the machine's with psutil
    where it is installed, whatever the CPU affinity or quota), unless
    ``PYTEST_XDIST_AUTO_NUM_WORKERS`` says otherwise."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_auto_num_workers(self, config: pytest.Config) -> int | None:
        if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
            return None  # xdist's own implementation reads it
        return usable_cpus()


def pytest_configure(config: pytest.Config) -> None:
    settings = config.stash[SETTINGS_KEY] = read_settings(config)
    worker = config.stash[WORKER_KEY] = Worker(config, settings)
    config.pluginmanager.register(worker, "passk-worker")
    if hasattr(config, "workerinput"):  # an xdist worker: the controller is elsewhere
        return
    controller = config.stash[CONTROLLER_KEY] = Controller(config, settings)
    config.pluginmanager.register(controller, "passk-controller")
    if settings.gated:
        config.pluginmanager.register(GateExitStatus(controller), "passk-gates")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistController(controller), "passk-xdist")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> ProblemFile | None:
    if is_problem_file(file_path):
        return ProblemFile.from_parent(parent, path=file_path, execution=parent.config.stash[WORKER_KEY])
    return None
