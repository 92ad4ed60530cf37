"""This plugin's options given with a space (``--passk-completions /data/samples.jsonl``)
behave as given with ``=``.

pytest decides the rootdir and reads the ini file before it loads plugins, so at
that moment it can't know that ``--passk-completions`` takes a value: it counts
``/data/samples.jsonl`` among the test paths and roots the run in ``/data``
(node ids, ``.pytest_cache``, the ini file and its ``testpaths`` all follow), and
pytest-xdist, which hands the command line to remote workers, refuses such a
path outside its rsync roots. Once the plugin is loaded, this module joins each
of its options to its value, decides the rootdir and ini file again with the
options known, and where that differs puts pytest's own answer in place before
any conftest, cache or collection uses it.

pytest offers no public way to do this, so the few attributes set here are
pytest's own; ``.ci/run`` tests the oldest and the newest supported pytest.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import os
import shlex
from collections.abc import Collection, Sequence

import pytest

__all__ = ["join_option_values", "value_options", "reconsider_rootdir"]


FLAG_ACTIONS = ("store_true", "store_false", "store_const", "count", "help", "version")


def value_options(parser: pytest.Parser) -> frozenset[str]:
    """This plugin's options that take a value."""
    from .options import OPTION_GROUPS

    names = set()
    for argument in (argument for group in OPTION_GROUPS for argument in parser.getgroup(group).options):
        attributes = argument.attrs()  # the keywords given (pytest 8), or argparse's action (pytest 9)
        if attributes.get("nargs") != 0 and attributes.get("action") not in FLAG_ACTIONS:
            names.update(name for name in argument.names() if name.startswith("--"))
    return frozenset(names)


def join_option_values(args: Sequence[str], options: Collection[str]) -> list[str]:
    """``[--opt, VALUE]`` -> ``[--opt=VALUE]`` for each of ``options``; the rest as it is."""
    joined: list[str] = []
    pending = ""
    for arg in args:
        if pending:
            joined.append(f"{pending}={arg}")
            pending = ""
        elif arg in options:
            pending = arg
        elif arg == "--":
            pending = ""
            joined.append(arg)
        else:
            joined.append(arg)
    if pending:
        joined.append(pending)  # no value: let the parser say so
    return joined


def reconsider_rootdir(config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    """Join this plugin's options to their values in the arguments, then decide rootdir and
    ini file again; where that changes them, fix them and what the ini file's addopts added."""
    from _pytest.config.findpaths import determine_setup

    options = value_options(parser)
    invocation = join_option_values([str(arg) for arg in config.invocation_params.args], options)
    if invocation != list(config.invocation_params.args):
        # pytest-xdist hands these to its workers, and checks each path in them against its rsync roots.
        config.invocation_params = dataclasses.replace(config.invocation_params, args=tuple(invocation))
    args[:] = join_option_values(args, options)
    given = [*join_option_values(shlex.split(os.environ.get("PYTEST_ADDOPTS", "")), options), *invocation]
    namespace = parser.parse_known_args(given)
    setup_arguments = {
        "inifile": namespace.inifilename,
        "args": namespace.file_or_dir,
        "rootdir_cmd_arg": namespace.rootdir or None,
        "invocation_dir": config.invocation_params.dir,
    }
    if "override_ini" in inspect.signature(determine_setup).parameters:  # pytest >= 9
        setup_arguments["override_ini"] = namespace.override_ini
    rootpath, inipath, inicfg, *ignored = determine_setup(**setup_arguments)
    if rootpath == config.rootpath and inipath == config.inipath:
        return
    config._rootpath = rootpath  # type: ignore[attr-defined]
    config._inipath = inipath  # type: ignore[attr-defined]
    if hasattr(config, "_inicfg"):
        config._inicfg = inicfg
    else:  # pytest 8
        config.inicfg = inicfg  # type: ignore[attr-defined]
    if ignored and hasattr(config, "_ignored_config_files"):
        config._ignored_config_files = ignored[0]
    config._inicache.clear()  # type: ignore[attr-defined]
    parser.extra_info["rootdir"] = str(rootpath)
    parser.extra_info["inifile"] = str(inipath)
    # The arguments again, with the right ini file's addopts in place of the wrong one's.
    args[:] = [*config.getini("addopts"), *given]
    config.known_args_namespace = parser.parse_known_args(args, namespace=copy.copy(config.option))
    if config.known_args_namespace.confcutdir is None:
        config.known_args_namespace.confcutdir = str(inipath.parent if inipath is not None else rootpath)
