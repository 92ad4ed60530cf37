"""What must not depend on where the product is installed or how it is called: imports
from wherever the test process imports, path options in both forms, report paths
checked before anything runs."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from .conftest import Completions, read_report

MODES = {"xdist": ["-n", "2"], "no-xdist": ["-p", "no:xdist"]}


@pytest.fixture(params=sorted(MODES))
def mode(request: pytest.FixtureRequest) -> list[str]:
    return MODES[request.param]


def test_samples_import_from_a_directory_under_tmp(pytester: pytest.Pytester, toy_problems: Path,
                                                   completions_file: Completions, monkeypatch: pytest.MonkeyPatch,
                                                   mode: list[str]) -> None:
    """A package on the test process's path in /tmp (where many virtual environments live)
    is importable in a sample under the default isolation, which covers /tmp for samples."""
    site = pytester.mkdir("site-under-tmp")
    (site / "passk_probe_package.py").write_text("VALUE = 42\n")
    monkeypatch.setenv("PYTHONPATH", str(site))
    path = completions_file([("Toy/0", "    import passk_probe_package\n    return a + b + passk_probe_package.VALUE - 42\n"),
                             ("Toy/0", "    import passk_no_such_package\n    return a + b\n")])
    report = pytester.path / "report.json"
    result = pytester.runpytest_subprocess("problems", *mode, f"--passk-completions={path}", f"--passk-json={report}")
    result.stdout.fnmatch_lines(["passk isolation: auto: *"])
    assert "would hide" not in result.stdout.str()
    samples = read_report(report)["samples"]
    assert [s["verdict"] for s in samples] == ["passed", "failed"]  # type: ignore[index]
    assert samples[1]["message"].startswith("ModuleNotFoundError: No module named 'passk_no_such_package'")  # type: ignore[index]


def test_an_import_path_the_sandbox_must_hide_is_named(pytester: pytest.Pytester, toy_problems: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """/tmp itself on the path: samples get a fresh /tmp, so the read-only layer is left out and
    the header says why (this was a StopIteration traceback from the plugin)."""
    monkeypatch.setenv("PYTHONPATH", "/tmp")
    result = pytester.runpytest_subprocess("problems", "-p", "no:xdist")
    result.stdout.fnmatch_lines(["passk isolation: auto: *; not available: read-only-fs (would hide /tmp)*"])
    result.assert_outcomes(passed=2, skipped=1)
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize("form", ["space", "equals"])
def test_path_options_root_the_run_the_same_in_both_forms(pytester: pytest.Pytester, toy_problems: Path,
                                                         tmp_path_factory: pytest.TempPathFactory,
                                                         form: str, mode: list[str]) -> None:
    data = tmp_path_factory.mktemp("data-elsewhere")
    samples = data / "samples.jsonl"
    samples.write_text('{"task_id": "Toy/0", "completion": "    return a + b\\n"}\n'
                       '{"task_id": "Toy/0", "completion": "    return 0\\n"}\n')
    report = data / "report.json"
    options = ["--passk-completions", str(samples), "--passk-json", str(report)] if form == "space" else \
        [f"--passk-completions={samples}", f"--passk-json={report}"]
    pytester.makeini("[pytest]\ntestpaths = problems\n")
    result = pytester.runpytest("-v", *mode, *options)
    result.stdout.fnmatch_lines([f"rootdir: {pytester.path}*"])
    result.stdout.re_match_lines([r".*(FAILED problems/toy\.jsonl::Toy/0\[1\]|problems/toy\.jsonl::Toy/0\[1\] FAILED)"])
    result.assert_outcomes(passed=1, failed=1, skipped=2)
    # No node id climbs out of the rootdir (as it did when /data became the rootdir). Other
    # paths may: pytest's warnings name files relative to the rootdir.
    assert not re.search(r"\.\./\S*::", result.stdout.str())
    assert sorted(path.name for path in data.iterdir()) == ["report.json", "samples.jsonl"]  # no .passk, no cache
    assert (pytester.path / ".passk" / "verdicts.jsonl").exists()


@pytest.mark.parametrize("option", ["--passk-json", "--passk-html", "--junitxml"])
@pytest.mark.parametrize("where", ["directory", "missing folder"])
def test_bad_report_path_fails_at_start(pytester: pytest.Pytester, toy_problems: Path, option: str,
                                        where: str) -> None:
    target = pytester.mkdir("out") if where == "directory" else pytester.path / "missing" / "report.out"
    result = pytester.runpytest("problems", f"{option}={target}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    expected = "is a directory" if where == "directory" else "does not exist"
    if option == "--junitxml" and where == "directory":
        expected = "must be a filename"  # pytest's own check
    result.stderr.fnmatch_lines([f"ERROR: {option} *{expected}*"])
    assert str(target) in result.stderr.str()
    assert len(result.stderr.lines) <= 2 and "Traceback" not in result.stderr.str() + result.stdout.str()
    assert "passed" not in result.stdout.str()


def test_report_that_fails_at_the_end_still_leaves_the_summary(pytester: pytest.Pytester, toy_problems: Path) -> None:
    folder = pytester.mkdir("reports")
    # The folder disappears while the run goes on, after the check at the start.
    pytester.makeconftest(f"import shutil\n\ndef pytest_collection_finish(session):\n    shutil.rmtree({str(folder)!r})\n")
    result = pytester.runpytest("problems", "-p", "no:xdist", f"--passk-json={folder / 'report.json'}",
                                "--passk-min=pass@1=50%")
    result.stdout.fnmatch_lines(["*= pass@k =*", "toy: 2 problems*pass@1 = 100.00%*", "*= gates =*",
                                 f"passk: could not write the JSON report {folder / 'report.json'}: No such file or directory"])
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    assert "Traceback" not in result.stdout.str()


@pytest.mark.skipif(os.geteuid() == 0, reason="checks what an unprivileged user gets (CI runs the tests as one too)")
def test_unprivileged_sandbox_runs_samples(pytester: pytest.Pytester, toy_problems: Path,
                                           completions_file: Completions) -> None:
    path = completions_file([("Toy/0", "    import os\n    return a + b if os.getpid() == 1 else None\n"),
                             ("Toy/1", "    return 2 * x\n")])
    result = pytester.runpytest("problems", "-n", "2", f"--passk-completions={path}")
    result.stdout.fnmatch_lines(["passk isolation: auto: *pid-namespace*"])
    result.assert_outcomes(passed=2, skipped=1)
