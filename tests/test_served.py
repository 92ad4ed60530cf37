"""--model openai:NAME against a real OpenAI-compatible server: ``transformers serve``
started here on a loopback port with a tiny model trained in the test, and a proxy
in front of it that fails requests the way real servers and networks do."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from .conftest import free_port

pytest.importorskip("openai")
pytest.importorskip("fastapi")

from .tiny_models import ADD_BODY, PROBLEM_FILE, trained_model  # noqa: E402,F401 (fixture)


@pytest.fixture(scope="module")
def server(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``transformers serve`` with the trained model preloaded (and a chat template, for --passk-chat);
    yields its /v1 address."""
    (trained_model / "chat_template.jinja").write_text(
        "{% for m in messages %}{{ m['content'] }}{% endfor %}{% if add_generation_prompt %}\n{% endif %}")
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "transformers.cli.transformers", "serve", str(trained_model), "--host", "127.0.0.1",
             "--port", str(port), "--device", "cpu"],
            stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"transformers serve did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=30)


class FlakyProxy(ThreadingHTTPServer):
    """Forwards to ``upstream``; the requests whose numbers are in ``fail`` get a 503,
    those in ``drop`` a closed connection, those in ``throttle`` a 429; with
    ``fail_from``, every completion request from that number on fails."""

    daemon_threads = True

    def __init__(self, upstream: str, fail: set[int] = set(), drop: set[int] = set(), throttle: set[int] = set(),
                 fail_from: int | None = None, api_key: str | None = None) -> None:
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        self.upstream, self.fail, self.drop, self.throttle, self.fail_from = upstream, fail, drop, throttle, fail_from
        self.api_key = api_key
        self.completions = 0  # completion requests seen, failed ones included
        self.forwarded = 0
        self.paths: list[str] = []  # of the forwarded completion requests
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class ProxyHandler(BaseHTTPRequestHandler):
    server: FlakyProxy

    def log_message(self, *args: object) -> None:
        pass

    def authorized(self) -> bool:
        key = self.server.api_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self.answer(401, b'{"error": {"message": "bad key"}}')
        return False

    def do_GET(self) -> None:
        if self.authorized():
            self.forward(None)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        proxy = self.server
        if not self.authorized():
            return None
        with proxy.lock:
            proxy.completions += 1
            number = proxy.completions
        if number in proxy.drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return None
        if number in proxy.fail or (proxy.fail_from is not None and number >= proxy.fail_from):
            return self.answer(503, b'{"error": {"message": "overloaded"}}')
        if number in proxy.throttle:
            return self.answer(429, b'{"error": {"message": "slow down"}}', {"Retry-After": "0"})
        return self.forward(body)

    def forward(self, body: bytes | None) -> None:
        request = urllib.request.Request(self.server.upstream.removesuffix("/v1") + self.path, data=body,
                                         headers={"Content-Type": "application/json"}, method=self.command)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                status, data = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, data = error.code, error.read()
        if body is not None:
            with self.server.lock:
                self.server.forwarded += 1
                self.server.paths.append(self.path)
        self.answer(status, data)

    def answer(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


@contextlib.contextmanager
def proxy(upstream: str, **failures: object) -> Iterator[FlakyProxy]:
    server = FlakyProxy(upstream, **failures)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def run_served(pytester: pytest.Pytester, model: Path, url: str, *args: str) -> pytest.RunResult:
    (pytester.path / "problem_add.py").write_text(PROBLEM_FILE)
    return pytester.runpytest(
        "problem_add.py", "-p", "no:randomly", f"--model=openai:{model}", f"--passk-base-url={url}",
        "--passk-max-new-tokens=30", f"--passk-cache-dir={pytester.path / 'cache'}", *args,
    )


def saved(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("mode", [["-n", "2"], ["-p", "no:xdist"]], ids=["xdist", "no-xdist"])
def test_served_model_end_to_end(pytester: pytest.Pytester, trained_model: Path, server: str, mode: list[str]) -> None:
    saved_path = pytester.path / "samples.jsonl"
    with proxy(server) as counting:
        result = run_served(pytester, trained_model, counting.url, *mode, "--samples=4", "--passk-temperature=0.8",
                            f"--passk-save-completions={saved_path}")
        first = counting.forwarded
        again = run_served(pytester, trained_model, counting.url, *mode, "--samples=4", "--passk-temperature=0.8")
        second = counting.forwarded
        more = run_served(pytester, trained_model, counting.url, *mode, "--samples=6", "--passk-temperature=0.8")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["passk: 4 samples generated, 0 from the cache*",
                                 "hand-written: 1 problems, n = 4 samples each: pass@1 = 100.00%*"])
    samples = saved(saved_path)
    # transformers serve ignores n: the backend asked again until it had 4; it returns the stop
    # sequence with the text, which the backend cut off; it returns no log-probabilities.
    assert first == 4
    assert [s["completion"] for s in samples] == [ADD_BODY] * 4
    assert all("sum_logprob" not in s for s in samples)
    again.stdout.fnmatch_lines(["passk: 0 samples generated, 4 from the cache*"])
    assert second == first  # a rerun asks the server nothing
    more.stdout.fnmatch_lines(["passk: 2 samples generated, 4 from the cache*"])
    more.assert_outcomes(passed=6)
    assert counting.forwarded == first + 2  # only what the cache lacked


def test_chat_endpoint_for_chat_models(pytester: pytest.Pytester, trained_model: Path, server: str) -> None:
    saved_path = pytester.path / "samples.jsonl"
    with proxy(server) as counting:
        result = run_served(pytester, trained_model, counting.url, "--samples=2", "--passk-chat",
                            f"--passk-save-completions={saved_path}")
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)  # what a random reply scores is no matter
    assert counting.paths == ["/v1/chat/completions"] * 2
    assert len(saved(saved_path)) == 2


def test_retries_server_errors_and_dropped_connections(pytester: pytest.Pytester, trained_model: Path,
                                                       server: str) -> None:
    with proxy(server, fail={1, 4}, drop={2, 6}, throttle={3}) as flaky:
        result = run_served(pytester, trained_model, flaky.url, "--samples=5", "--passk-temperature=0.8",
                            "--passk-concurrency=2")
    result.assert_outcomes(passed=5)
    assert flaky.completions == 10 and flaky.forwarded == 5  # five failed requests, each retried


def test_server_failing_midway_keeps_finished_samples(pytester: pytest.Pytester, trained_model: Path,
                                                      server: str) -> None:
    with proxy(server, fail_from=4) as flaky:
        broken = run_served(pytester, trained_model, flaky.url, "--samples=6", "--passk-temperature=0.8",
                            "--passk-concurrency=1")
        flaky.fail_from = None  # the server recovers
        resumed = run_served(pytester, trained_model, flaky.url, "--samples=6", "--passk-temperature=0.8")
    assert broken.ret == pytest.ExitCode.INTERNAL_ERROR
    broken.stdout.fnmatch_lines(["*passk: sampling from openai:* failed (InternalServerError: *); "
                                 "the samples finished so far are cached and a rerun continues from them*"])
    assert "Traceback" not in broken.stdout.str()
    resumed.stdout.fnmatch_lines(["passk: 3 samples generated, 3 from the cache*"])
    resumed.assert_outcomes(passed=6)


def test_api_key_comes_from_the_environment(pytester: pytest.Pytester, trained_model: Path, server: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PASSK_TEST_KEY", "s3cret")
    with proxy(server, api_key="s3cret") as guarded:
        refused = run_served(pytester, trained_model, guarded.url, "--samples=1")
        accepted = run_served(pytester, trained_model, guarded.url, "--samples=1", "--passk-api-key-env=PASSK_TEST_KEY")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(["*refused the API key*"])
    accepted.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("model", "url", "message"),
    [("openai:no-such-model", None, "--model openai:no-such-model: not served at http://127.0.0.1:*/v1 (it serves: *)"),
     ("openai:x", "http://127.0.0.1:{dead}/v1", "--model openai:x: cannot reach http://127.0.0.1:*/v1 (Connection error.)"),
     ("openai:x", "", "--model openai:x: needs --passk-base-url (the server's /v1 address)")],
)
def test_unusable_server_is_a_usage_error(pytester: pytest.Pytester, server: str, model: str, url: str | None,
                                          message: str) -> None:
    (pytester.path / "problem_add.py").write_text(PROBLEM_FILE)
    address = server if url is None else url.format(dead=free_port())
    args = [f"--passk-base-url={address}"] if address else []
    result = pytester.runpytest("problem_add.py", f"--model={model}", *args, f"--passk-cache-dir={pytester.path / 'c'}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
