"""Joining this plugin's options to their values (see pytest_passk.arguments)."""

from __future__ import annotations

import pytest

from pytest_passk.arguments import join_option_values, value_options


def test_value_options_are_those_that_take_a_value(pytestconfig: pytest.Config) -> None:
    options = value_options(pytestconfig._parser)  # the parser the plugin added its options to
    assert {"--passk-completions", "--passk-json", "--passk-html", "--model", "--samples", "--passk-env"} <= options
    assert not options & {"--passk-no-dedup", "--passk-resume", "--passk-require-significant", "--passk-chat"}


def test_join_option_values() -> None:
    options = {"--passk-completions", "--passk-json"}
    assert join_option_values(["-n", "2", "--passk-completions", "/data/s.jsonl", "--passk-resume", "problems"], options) == [
        "-n", "2", "--passk-completions=/data/s.jsonl", "--passk-resume", "problems"]
    assert join_option_values(["--passk-json=r.json", "--passk-completions"], options) == [
        "--passk-json=r.json", "--passk-completions"]  # no value: left to the parser to report
