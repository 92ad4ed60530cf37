"""Hostile completions: each must end as a non-passing verdict with a clear reason,
touch nothing outside its sample, leave no process behind, and leave the rest of
the run (its other samples' verdicts, the summary) as it would be without it.

Every run here happens inside :func:`confine.confinement`: as root, a sandbox
failure could otherwise take the machine down.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import uuid
from pathlib import Path

import pytest

from .confine import confinement
from .conftest import Completions

MARKER = f"passk-escapee-{uuid.uuid4().hex[:8]}"
# Where every layer is available (root, cgroup v1): what a layer's absence changes can then be tested.
every_layer = pytest.mark.skipif(os.geteuid() != 0, reason="needs root, where every isolation layer works")
SECRET_NAME = "PASSK_TEST_SECRET"


def hostile_samples(canary: Path, port: int, home_secret: Path) -> list[tuple[str, str, set[str]]]:
    """(what it tries, body of Toy/0's `add`, the verdicts it may get)."""
    escapee = f"['sleep', '1000', '{MARKER}']"
    return [
        # pass without passing
        ("sys.exit(0)", "    import sys\n    sys.exit(0)\n", {"failed"}),
        ("os._exit(0) in the body", "    import os\n    os._exit(0)\n", {"crashed"}),
        ("os._exit(0) at module level", "    return a + b\nimport os\nos._exit(0)\n", {"crashed"}),
        ("raise SystemExit", "    raise SystemExit\n", {"failed"}),
        ("KeyboardInterrupt", "    raise KeyboardInterrupt\n", {"failed"}),
        ("close inherited fds", "    import os\n    for fd in range(3, 1024):\n        try:\n            os.close(fd)\n"
         "        except OSError:\n            pass\n    return a + b\n", {"crashed"}),
        ("write to inherited fds", "    import os\n    for fd in range(1, 1024):\n        try:\n"
         "            os.write(fd, b'[\"passed\", \"\"]\\n')\n        except OSError:\n            pass\n    return a + b\n",
         {"crashed"}),
        ("cancel the alarm, then loop", "    import signal\n    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
         "    signal.setitimer(signal.ITIMER_REAL, 0)\n    while True:\n        pass\n", {"timeout"}),
        ("always-equal result", "    class Anything:\n        def __eq__(self, other):\n            return True\n"
         "    return Anything()\n", {"suspicious"}),
        # outlive its sample
        ("Popen(start_new_session=True)", "    import importlib, subprocess\n    importlib.reload(subprocess)\n"
         f"    subprocess.Popen({escapee}, start_new_session=True)\n    return None\n", {"failed"}),
        ("double fork and setsid", "    import posix\n    if posix.fork() == 0:\n        posix.setsid()\n"
         f"        if posix.fork() == 0:\n            posix.execv('/bin/sleep', {escapee})\n        posix._exit(0)\n"
         "    return None\n", {"failed"}),
        # take down the run
        ("kill the parent", "    import os, signal\n    os.kill(os.getppid(), signal.SIGKILL)\n", {"failed"}),
        ("kill the parent past the guard", "    import posix, signal\n    posix.kill(posix.getppid(), signal.SIGKILL)\n"
         "    return None\n", {"failed", "crashed"}),
        ("kill(-1)", "    import posix, signal\n    posix.kill(-1, signal.SIGKILL)\n    return None\n", {"failed", "crashed"}),
        ("fork bomb", "    import posix\n    while True:\n        try:\n            posix.fork()\n        except OSError:\n"
         "            pass\n", {"timeout", "crashed"}),
        ("segfault", "    import ctypes\n    ctypes.string_at(0)\n", {"crashed"}),
        ("unbounded recursion", "    def deeper(n):\n        return deeper(n + 1)\n    return deeper(0)\n", {"failed"}),
        ("gigabytes to stdout", "    import posix\n    block = b'x' * (1 << 20)\n    while True:\n"
         "        posix.write(1, block)\n        print(block)\n", {"timeout"}),
        ("eat memory", "    hoard = []\n    while True:\n        hoard.append(b'x' * (32 << 20))\n", {"oom"}),
        ("eat memory in many processes", "    import posix\n    for _ in range(16):\n        if posix.fork() == 0:\n"
         "            break\n    hoard = []\n    while True:\n        hoard.append(b'x' * (32 << 20))\n",
         {"oom", "timeout", "crashed"}),
        # reach outside
        ("write a file outside", f"    open({str(canary)!r}, 'w').write('changed')\n    return a + b\n", {"failed"}),
        ("delete a file outside", f"    import posix\n    posix.unlink({str(canary)!r})\n    return a + b\n", {"failed"}),
        ("rename a file outside", f"    import posix\n    posix.rename({str(canary)!r}, {str(canary)!r} + '.moved')\n"
         "    return a + b\n", {"failed"}),
        ("loopback connection", f"    import socket\n    socket.create_connection(('127.0.0.1', {port}), timeout=1)"
         ".sendall(b'hello')\n    return a + b\n", {"failed"}),
        ("read the parent's secrets", f"    import os\n    found = {SECRET_NAME!r} in os.environ\n"
         "    for pid in os.listdir('/proc'):\n        try:\n"
         f"            found = found or b{SECRET_NAME!r} in open('/proc/' + pid + '/environ', 'rb').read()\n"
         "        except OSError:\n            pass\n    return a + b if found else None\n", {"failed"}),
        ("read a secret in the home directory", f"    return a + b if open({str(home_secret)!r}).read() else None\n",
         {"failed"}),
        ("remount writable", "    import ctypes\n    libc = ctypes.CDLL(None)\n"
         "    assert libc.mount(None, b'/', None, 32 | 4096, None) == 0\n    return a + b\n", {"failed"}),
    ]


@pytest.fixture
def canary() -> object:
    """A file outside the sample's reach: on the root file system, not in /tmp."""
    path = Path("/var/tmp") / f"passk-canary-{uuid.uuid4().hex[:8]}"
    path.write_text("intact")
    yield path
    path.unlink(missing_ok=True)
    Path(str(path) + ".moved").unlink(missing_ok=True)


@pytest.fixture
def home_secret() -> object:
    """A file in the home directory of the user running the tests (where keys and tokens live)."""
    path = Path.home() / f".passk-test-secret-{uuid.uuid4().hex[:8]}"
    path.write_text("hunter2")
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture
def listener() -> object:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.setblocking(False)
    yield server
    server.close()


def escaped_processes() -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if MARKER.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            continue
    return found


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["no-xdist", "xdist"])
def test_hostile_samples_are_contained(pytester: pytest.Pytester, toy_problems: Path, completions_file: Completions,
                                       canary: Path, listener: socket.socket, home_secret: Path, workers: list[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    samples = hostile_samples(canary, listener.getsockname()[1], home_secret)
    rows = [("Toy/0", body) for _, body, _ in samples] + [("Toy/0", "    return a + b\n")] * 3
    rows += [("Toy/1", "    return 2 * x\n"), ("Toy/1", "    return x + x\n"), ("Toy/1", "    return x\n")]
    path = completions_file(rows)
    report = pytester.path / "report.json"
    monkeypatch.setenv(SECRET_NAME, "hunter2")
    with confinement() as confine:
        result = pytester.run(*confine, sys.executable, "-m", "pytest", "problems", *workers, "-p", "no:randomly",
                              f"--passk-completions={path}", "--passk-timeout=2", "--passk-memory=512MiB",
                              "--passk-k=1,2", f"--passk-json={report}", "--passk-isolation=strict", timeout=240)
    try:
        escapees = escaped_processes()
    finally:
        for pid in escaped_processes():
            os.kill(pid, signal.SIGKILL)
    assert escapees == [], "a sample's process outlived it"
    data = json.loads(report.read_text())
    verdicts = {(s["task_id"], s["index"]): (s["verdict"], s["message"]) for s in data["samples"]}  # type: ignore[index]
    for index, (label, _, allowed) in enumerate(samples):
        verdict, message = verdicts[("Toy/0", index)]
        assert verdict in allowed, f"{label}: {verdict} ({message})"
        assert message, label
    hostile = len(samples)
    assert [verdicts[("Toy/0", hostile + i)][0] for i in range(3)] == ["passed"] * 3
    assert [verdicts[("Toy/1", i)][0] for i in range(3)] == ["passed", "passed", "failed"]
    assert canary.read_text() == "intact"
    with pytest.raises(BlockingIOError):
        listener.accept()
    # Toy/0: n = hostile + 3, c = 3; Toy/1: n = 3, c = 2.
    (suite,) = data["suites"]  # type: ignore[misc]
    assert suite["pass_at_k"]["pass@1"] == pytest.approx((3 / (hostile + 3) + 2 / 3) / 2)
    assert suite["verdicts"]["passed"] == 5
    assert suite["verdicts"]["suspicious"] == 1
    assert data["run"]["isolation"]["mode"] == "strict"  # type: ignore[index]
    result.stdout.fnmatch_lines(["passk isolation: strict: *pid-namespace*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["no-xdist", "xdist"])
def test_isolation_modes_agree_on_honest_samples(pytester: pytest.Pytester, toy_problems: Path,
                                                 completions_file: Completions, workers: list[str]) -> None:
    bodies = ["    return a + b\n", "    return a - b\n", "    import math\n    return math.floor(a + b)\n",
              "    import tempfile, os\n    with tempfile.TemporaryFile() as f:\n        f.write(b'x')\n    return a + b\n",
              "    open('scratch.txt', 'w').write(str(a + b))\n    return int(open('scratch.txt').read())\n"]
    path = completions_file([("Toy/0", body) for body in bodies])
    verdicts = {}
    for mode in ("basic", "auto"):
        report = pytester.path / f"{mode}.json"
        result = pytester.runpytest("problems", *workers, f"--passk-completions={path}", f"--passk-isolation={mode}",
                                    f"--passk-json={report}")
        result.stdout.fnmatch_lines([f"passk isolation: {mode}: rlimits, process-group*"])
        verdicts[mode] = [s["verdict"] for s in json.loads(report.read_text())["samples"]]
    assert verdicts["basic"] == verdicts["auto"] == ["passed", "failed", "passed", "passed", "passed"]


def test_unknown_isolation_mode_is_a_usage_error(pytester: pytest.Pytester, toy_problems: Path) -> None:
    result = pytester.runpytest("problems", "--passk-isolation=gvisor")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--passk-isolation: expected one of auto, strict, basic, got 'gvisor'*"])


@every_layer
@pytest.mark.parametrize(
    ("left_out", "also_missing"),
    [(("read-only-fs",), {"hidden-home", "pids-cgroup", "memory-cgroup", "cpu-cgroup"}),
     (("pid-namespace", "net-namespace"), set()),
     (("no-capabilities",), set())],
)
def test_layers_fall_back_cleanly(left_out: tuple[str, ...], also_missing: set[str]) -> None:
    """Where a layer can't be had, the fork server says so, leaves out what depends on it,
    and still gives honest samples their verdicts."""
    from pytest_passk.sandbox import wire
    from pytest_passk.sandbox.runner import sandbox_environment, start_server

    process, report = start_server(1, "auto", 1 << 30, sandbox_environment(), left_out)
    assert process.stdin is not None and process.stdout is not None
    with process:
        assert set(report.missing) == set(left_out) | also_missing
        assert all(layer not in report.description.split(";")[0] for layer in report.missing)
        wire.write(process.stdin, wire.DefineProblem(0, "def add(a, b):\n", "def check(c):\n    assert c(1, 2) == 3\n", "add"))
        for index, body in enumerate(["    return a + b\n", "    return a - b\n"]):
            wire.write(process.stdin, wire.RunSample(index, 0, body, 3.0))
        replies = sorted((reply.id, reply.verdict) for reply in (wire.read_verdict(process.stdout) for _ in range(2)))
        process.stdin.close()
    assert replies == [(0, wire.Verdict.PASSED), (1, wire.Verdict.FAILED)]


@every_layer
def test_strict_mode_refuses_a_missing_layer() -> None:
    from pytest_passk.sandbox.runner import sandbox_environment, start_server

    process, report = start_server(1, "strict", 1 << 30, sandbox_environment(), ("net-namespace",))
    with process:
        assert report.missing == {"net-namespace": "left out"}
        assert process.wait(timeout=10) == 0  # it said what is missing and stopped, running nothing
