"""--model: tiny models built here and loaded through from_pretrained, as a user's model is."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from pytest_passk.sources.sampling import CODEX_STOP_SEQUENCES, SamplingParams, extract_code, truncate_at_stop  # noqa: E402

from .conftest import read_report  # noqa: E402
from .tiny_models import (  # noqa: E402,F401 (fixtures)
    ADD_BODY,
    ADD_PROMPT,
    EOS,
    PROBLEM_FILE,
    build_model,
    build_tokenizer,
    random_model,
    trained_model,
    write_problems,
)


def saved(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("mode", [["-n", "2"], ["-p", "no:xdist"]], ids=["xdist", "no-xdist"])
def test_trained_model_reaches_pass_at_1(pytester: pytest.Pytester, trained_model: Path, mode: list[str]) -> None:
    pytester.makefile(".py", problem_add=PROBLEM_FILE)
    report = pytester.path / "report.json"
    result = pytester.runpytest(
        "problem_add.py", *mode, "--model", str(trained_model), "--passk-device=cpu", "--passk-max-new-tokens=40",
        f"--passk-json={report}", f"--passk-cache-dir={pytester.path / 'cache'}",
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["passk: 1 samples generated, 0 from the cache*", "hand-written: 1 problems, n = 1 samples each: pass@1 = 100.00% [95% CI 100.0-100.0]"])
    data = read_report(report)
    (sample,) = data["samples"]  # type: ignore[misc]
    assert sample["verdict"] == "passed"
    assert sample["num_tokens"] > 0 and sample["sum_logprob"] < 0
    assert sample["mean_logprob"] == pytest.approx(sample["sum_logprob"] / sample["num_tokens"])
    assert data["run"]["sampling"]["temperature"] == 0.0  # type: ignore[index]
    assert data["run"]["generation"]["generated"] == 1  # type: ignore[index]
    # Where the time went: the stages add up, the weights' load and the first batch inside sampling.
    result.stdout.fnmatch_lines(["passk: time: start-up * s, sampling * s (prepare * s, load * s, first batch * s, "
                                 "the rest * s), execution * s; * s in all"])
    timing = data["run"]["timing"]  # type: ignore[index]
    assert timing["load"] > 0 and timing["first_batch"] > 0 and timing["startup"] > 0
    assert timing["prepare"] + timing["load"] + timing["first_batch"] + timing["generation"] <= timing["sampling"] + 2e-3
    assert timing["startup"] + timing["sampling"] + timing["execution"] <= timing["total"] + 1e-3


def test_samples_seed_cache_and_save(pytester: pytest.Pytester, random_model: Path) -> None:
    write_problems(pytester)
    out = pytester.mkdir("out")  # what the runs write, out of collection's way
    pytester.makeini("[pytest]\nnorecursedirs = out\n")
    cache = f"--passk-cache-dir={out / 'cache'}"
    common = ["--model", str(random_model), "--samples", "3", "--passk-max-new-tokens=12", "--passk-seed=7", cache]
    first = pytester.runpytest(*common, "-n", "2", f"--passk-save-completions={out / 'first.jsonl'}", f"--passk-json={out / 'first.json'}")
    outcomes = first.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 9  # random code: whatever its verdicts, 3 x 3 samples
    first.stdout.fnmatch_lines([f"passk: sampling plan for {random_model}: 3 problems x 3 samples; 0 of 9 cached, 9 to generate",
                                "passk: 9 samples generated, 0 from the cache*"])
    samples = saved(out / "first.jsonl")
    assert [s["task_id"] for s in samples] == ["add"] * 3 + ["longer_name"] * 3 + ["neg"] * 3
    assert len({s["completion"] for s in samples if s["task_id"] == "add"}) > 1  # sampled, not greedy
    assert read_report(out / "first.json")["run"]["generation"]["weights_loaded"] is True  # type: ignore[index]
    cached = pytester.runpytest(*common, f"--passk-save-completions={out / 'second.jsonl'}", f"--passk-json={out / 'second.json'}")
    # Everything cached: from_pretrained never loads the weights.
    cached.stdout.fnmatch_lines([f"passk: sampling plan for {random_model}: 3 problems x 3 samples; 9 of 9 cached, 0 to generate",
                                 "passk: 0 samples generated, 9 from the cache; the model's weights were not loaded"])
    assert read_report(out / "second.json")["run"]["generation"]["weights_loaded"] is False  # type: ignore[index]
    assert saved(out / "second.jsonl") == samples
    # Same seed, no cache: the same samples again.
    pytester.runpytest(*common, "--passk-regenerate", f"--passk-save-completions={out / 'third.jsonl'}").stdout.fnmatch_lines(
        ["passk: 9 samples generated*"]
    )
    assert [s["completion"] for s in saved(out / "third.jsonl")] == [s["completion"] for s in samples]
    # Asking for more samples draws only the missing ones.
    more = pytester.runpytest(*common[:3], "5", *common[4:])
    more.stdout.fnmatch_lines(["*3 problems x 5 samples; 9 of 15 cached, 6 to generate", "passk: 6 samples generated, 9 from the cache*"])


NEVER_PASSES = "PROMPT = 'def never() -> None:\\n    \"\"\"Never right.\"\"\"\\n'\n\ndef check(candidate):\n    assert False\n"


def sampled_tasks(path: Path) -> list[str]:
    """The task ids a run's --passk-save-completions file holds, in order, once each."""
    return list(dict.fromkeys(str(s["task_id"]) for s in saved(path)))


@pytest.mark.parametrize("mode", [["-n", "2"], ["-p", "no:xdist"]], ids=["xdist", "no-xdist"])
def test_selection_decides_what_is_sampled(pytester: pytest.Pytester, random_model: Path, mode: list[str]) -> None:
    write_problems(pytester)
    out = pytester.mkdir("out")
    pytester.makeini("[pytest]\nnorecursedirs = out\n")
    common = [*mode, "--model", str(random_model), "--samples", "2", "--passk-max-new-tokens=8",
              f"--passk-cache-dir={out / 'cache'}"]

    def run(*selection: str, name: str) -> pytest.RunResult:
        result = pytester.runpytest(*common, *selection, f"--passk-save-completions={out / name}")
        outcomes = result.parseoutcomes()
        result.samples_run = outcomes.get("passed", 0) + outcomes.get("failed", 0)  # type: ignore[attr-defined]
        return result

    by_keyword = run("-k", "neg", name="k.jsonl")
    by_keyword.stdout.fnmatch_lines([f"passk: sampling plan for {random_model}: 1 problems x 2 samples; 0 of 2 cached, 2 to generate"])
    assert sampled_tasks(out / "k.jsonl") == ["neg"] and by_keyword.samples_run == 2  # type: ignore[attr-defined]
    # Both of add's samples deselected: the other two problems, one of them cached by now.
    deselected = run("--deselect", "problem_add.py::add[0]", "--deselect", "problem_add.py::add[1]", name="d.jsonl")
    deselected.stdout.fnmatch_lines(["*: 2 problems x 2 samples; 2 of 4 cached, 2 to generate"])
    assert sorted(sampled_tasks(out / "d.jsonl")) == ["longer_name", "neg"]
    assert deselected.samples_run == 4  # type: ignore[attr-defined]
    # A node id: only the problem it names.
    by_id = run("problem_add.py::add[1]", name="id.jsonl")
    by_id.stdout.fnmatch_lines(["*: 1 problems x 2 samples; 0 of 2 cached, 2 to generate"])
    assert sampled_tasks(out / "id.jsonl") == ["add"] and by_id.samples_run == 1  # type: ignore[attr-defined]
    nothing = run("-k", "no_such_problem", name="none.jsonl")
    assert "sampling plan" not in nothing.stdout.str() and nothing.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert not (out / "none.jsonl").exists() or sampled_tasks(out / "none.jsonl") == []


@pytest.mark.parametrize("mode", [["-n", "2"], ["-p", "no:xdist"]], ids=["xdist", "no-xdist"])
def test_last_failed_samples_only_the_failed_problems(pytester: pytest.Pytester, trained_model: Path,
                                                       mode: list[str]) -> None:
    write_problems(pytester)
    pytester.makefile(".py", problem_never=NEVER_PASSES)
    out = pytester.mkdir("out")
    pytester.makeini("[pytest]\nnorecursedirs = out\n")
    common = [*mode, "--model", str(trained_model), "--passk-max-new-tokens=24", f"--passk-cache-dir={out / 'cache'}"]
    first = pytester.runpytest(*common, f"--passk-json={out / 'first.json'}")
    verdicts = {s["task_id"]: s["verdict"] for s in read_report(out / "first.json")["samples"]}  # type: ignore[union-attr]
    assert verdicts["add"] == "passed" and verdicts["never"] == "failed"  # the trained answer; a check that can't pass
    failed = sorted(task for task, verdict in verdicts.items() if verdict != "passed")
    rerun = pytester.runpytest(*common, "--lf", "--passk-regenerate", f"--passk-save-completions={out / 'lf.jsonl'}")
    rerun.stdout.fnmatch_lines([f"*: {len(failed)} problems x 1 samples (greedy*; 0 of {len(failed)} cached, "
                                f"{len(failed)} to generate"])
    assert sorted(sampled_tasks(out / "lf.jsonl")) == failed
    rerun.assert_outcomes(failed=len(failed))
    first.assert_outcomes(passed=4 - len(failed), failed=len(failed))


def test_cached_rerun_opens_no_model(tmp_path: Path, random_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rerun of an unchanged local model whose samples are all cached finds them by the
    identity remembered from the run before: no tokenizer, no weights, not even torch."""
    import shutil

    from pytest_passk.problems import Problem
    from pytest_passk.sources import generation

    model = tmp_path / "model"
    shutil.copytree(random_model, model)
    problem = Problem("add", ADD_PROMPT, "add", "def check(candidate):\n    pass\n", "toy")
    options = generation.ModelOptions(str(model), None, "auto", "cpu", False, None)
    params = SamplingParams(samples=2, temperature=0.8, max_new_tokens=6)
    opened: list[str] = []
    real_make_sampler = generation.make_sampler

    def counting_make_sampler(options: generation.ModelOptions) -> object:
        opened.append(options.model)
        return real_make_sampler(options)

    monkeypatch.setattr(generation, "make_sampler", counting_make_sampler)
    first = generation.generate_completions([problem], options, params, tmp_path / "cache")
    assert first.generated == 2 and opened == [str(model)]
    again = generation.generate_completions([problem], options, params, tmp_path / "cache")
    assert (again.generated, again.cached, again.weights_loaded) == (0, 2, False)
    assert opened == [str(model)]  # not opened again
    assert again.plan.samples == first.plan.samples and again.model_identity == first.model_identity
    # A changed file (here a new modification time) is a model the memo does not know: opened again.
    weights = next(model.glob("*.safetensors"))
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    third = generation.generate_completions([problem], options, params, tmp_path / "cache")
    assert opened == [str(model)] * 2 and third.cached == 2  # same bytes: the same identity, still cached


def test_greedy_output_does_not_depend_on_batch_size(pytester: pytest.Pytester, random_model: Path) -> None:
    write_problems(pytester)
    outputs = []
    for batch in ("1", "3"):
        pytester.runpytest(
            "--model", str(random_model), "--passk-max-new-tokens=16", f"--passk-batch-size={batch}",
            f"--passk-cache-dir={pytester.path / ('cache' + batch)}", f"--passk-save-completions=out{batch}.jsonl",
        )
        outputs.append(saved(pytester.path / f"out{batch}.jsonl"))
    assert len(outputs[0]) == 3
    assert [s["completion"] for s in outputs[0]] == [s["completion"] for s in outputs[1]]


@pytest.mark.parametrize("kind", ["missing", "no-weights"])
def test_unloadable_model_is_a_usage_error(pytester: pytest.Pytester, random_model: Path, kind: str) -> None:
    pytester.makefile(".py", problem_add=PROBLEM_FILE)
    if kind == "missing":
        target = str(pytester.path / "no-such-model")
        expected = "*--model *no-such-model: no such directory*"
    else:
        target = str(pytester.mkdir("empty-model"))
        (Path(target) / "config.json").write_text((random_model / "config.json").read_text())
        expected = "*--model *empty-model: cannot load model or tokenizer:*"
    result = pytester.runpytest("problem_add.py", "--model", target)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_failure_midway_keeps_finished_batches(tmp_path: Path, random_model: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from pytest_passk.problems import Problem

    # Through sys.modules: in-process pytester runs above may have left stale module attributes.
    generation = importlib.import_module("pytest_passk.sources.generation")
    model = importlib.import_module("pytest_passk.sources.transformers_model")
    original = model.TransformersSampler._generate
    calls = []

    def breaks_on_second_batch(self: model.TransformersSampler, *args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("device lost")
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    problems = [Problem(f"p/{i}", f"def f{i}():\n", f"f{i}", "def check(c):\n    pass\n", "s") for i in range(3)]
    options = generation.ModelOptions(str(random_model), None, "float32", "cpu", False, batch_size=2)
    params = SamplingParams(samples=2, temperature=0.8, max_new_tokens=4)
    monkeypatch.setattr(model.TransformersSampler, "_generate", breaks_on_second_batch)
    with pytest.raises(RuntimeError, match="device lost"):
        generation.generate_completions(problems, options, params, tmp_path, quiet=True)
    monkeypatch.undo()
    report = generation.generate_completions(problems, options, params, tmp_path, quiet=True)
    assert (report.cached, report.generated) == (2, 4)  # one batch of 2 kept, the other 4 drawn now
    assert [len(texts) for texts in report.plan.samples.values()] == [2, 2, 2]


def test_truncate_at_first_stop_sequence() -> None:
    text = "    return 1\n\nif __name__ == '__main__':\n    print(f())\ndef g(): pass"
    assert truncate_at_stop(text, CODEX_STOP_SEQUENCES) == "    return 1\n"
    assert truncate_at_stop("    x = 1\n    # fine\n    return x", CODEX_STOP_SEQUENCES) == "    x = 1\n    # fine\n    return x"
    assert truncate_at_stop("abc", ()) == "abc"


def test_extract_code_from_chat_reply() -> None:
    assert extract_code("Sure!\n```python\ndef f():\n    return 1\n```\nDone.") == "def f():\n    return 1\n"
    assert extract_code("def f():\n    return 2\n") == "def f():\n    return 2\n"


def test_sampling_identity_ignores_sample_count() -> None:
    assert SamplingParams(samples=1, temperature=0.8).identity() == SamplingParams(samples=9, temperature=0.8).identity()
    assert SamplingParams(temperature=0.0, top_p=0.5).identity() == SamplingParams(temperature=0.0, top_p=0.9).identity()
    assert SamplingParams(seed=1).identity() != SamplingParams(seed=2).identity()


def test_out_of_memory_halves_the_batch(random_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_passk.sources.transformers_model import TransformersSampler
    from pytest_passk.sources.sampling import Job

    sampler = TransformersSampler(str(random_model), device="cpu", batch_size=8)
    generate = sampler._generate
    sizes: list[int] = []

    def tight(prompts: list[str], repeats: int, params: SamplingParams, seed: int) -> list[object]:
        sizes.append(len(prompts) * repeats)
        if len(prompts) * repeats > 2:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes")
        return generate(prompts, repeats, params, seed)

    monkeypatch.setattr(sampler, "_generate", tight)
    kept: list[object] = []
    sampler.sample([Job("a", ADD_PROMPT, 4)], SamplingParams(samples=4, temperature=0.8, max_new_tokens=4),
                   lambda batch: kept.extend(batch))
    assert sampler.batch_size == 2 and len(kept) == 4
    assert sizes[:3] == [4, 4, 2]  # 8 per batch holds 4 samples (refused), 4 (refused), then 2 at a time


@pytest.mark.parametrize("mode", [["-n", "2"], ["-p", "no:xdist"]], ids=["xdist", "no-xdist"])
def test_prompt_longer_than_the_context_fails_at_start(pytester: pytest.Pytester, random_model: Path,
                                                       mode: list[str]) -> None:
    pytester.makefile(".py", problem_add=PROBLEM_FILE)
    cache = pytester.path / "cache"
    result = pytester.runpytest("problem_add.py", *mode, "--model", str(random_model), "--passk-max-new-tokens=250",
                                f"--passk-cache-dir={cache}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    prompt_tokens = len(transformers.AutoTokenizer.from_pretrained(random_model)(ADD_PROMPT)["input_ids"])
    result.stderr.fnmatch_lines([f"ERROR: passk: add does not fit *'s context: {prompt_tokens} prompt tokens + 250 new tokens "
                                 "(--passk-max-new-tokens) > 256"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert not list((cache / "samples").rglob("*.json"))  # nothing generated


def test_quiet_silences_every_progress_bar(pytester: pytest.Pytester, random_model: Path) -> None:
    pytester.makefile(".py", problem_add=PROBLEM_FILE)
    common = ["problem_add.py", "-p", "no:xdist", "--model", str(random_model), "--passk-max-new-tokens=8"]
    loud = pytester.runpytest_subprocess(*common, f"--passk-cache-dir={pytester.path / 'loud'}")
    assert "sampling " in loud.stderr.str()  # the sampling bar, without -q
    quiet = pytester.runpytest_subprocess(*common, "-q", f"--passk-cache-dir={pytester.path / 'quiet'}")
    quiet.assert_outcomes(failed=1) if "1 failed" in quiet.stdout.str() else quiet.assert_outcomes(passed=1)
    assert "%|" not in quiet.stderr.str() + quiet.stdout.str()  # no bar of ours, transformers' or the hub's
    assert "Loading" not in quiet.stderr.str() + quiet.stdout.str()


def test_help_groups_every_option_with_its_default(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    text = result.stdout.str()
    groups = ["pass@k: problems and completions:", "pass@k: model sampling (--model):",
              "pass@k: served models (--model openai:NAME):", "pass@k: execution and sandbox:",
              "pass@k: reports:", "pass@k: gates:"]
    positions = [text.index(group) for group in groups]
    assert positions == sorted(positions)
    section = text[positions[0]:text.index("\n\n", positions[-1])]  # our groups, through the last one
    entries = re.split(r"\n  (?=--)", section)
    options = [entry for entry in entries if entry.startswith(("--passk-", "--model", "--samples"))]
    assert len(options) >= 36
    for entry in options:
        assert "Default:" in " ".join(entry.split()), entry.split()[0]


@pytest.mark.parametrize("mode", [["-n", "2"], ["-p", "no:xdist"]], ids=["xdist", "no-xdist"])
def test_temperature_study_from_a_model(pytester: pytest.Pytester, trained_model: Path, mode: list[str]) -> None:
    """Sampled at T2 first, then at 0 and 2: the second run samples only the new temperature,
    greedy drawn once for n samples; pass@k per temperature is the hand count of the verdicts."""
    write_problems(pytester)
    out = pytester.mkdir("out")
    pytester.makeini("[pytest]\nnorecursedirs = out\n")
    common = [*mode, "problem_add.py", "problem_neg.py", "--model", str(trained_model), "--samples", "4",
              "--passk-max-new-tokens=24", "--passk-k=1,2,4", f"--passk-cache-dir={out / 'cache'}"]
    hot = pytester.runpytest(*common, "--passk-temperature=2", f"--passk-save-completions={out / 'hot.jsonl'}")
    hot.stdout.fnmatch_lines([f"passk: sampling plan for {trained_model}: 2 problems x 4 samples; 0 of 8 cached, 8 to generate"])
    report = out / "study.json"
    study = pytester.runpytest(*common, "--passk-temperature=2,0", f"--passk-json={report}",
                               f"--passk-save-completions={out / 'study.jsonl'}")
    study.stdout.fnmatch_lines([
        f"passk: sampling plan for {trained_model}: 2 problems x 4 samples x 2 temperatures "
        "(0, 2, greedy: one drawn, repeated); 8 of 10 cached, 2 to generate",
        "passk: 2 samples generated, 8 from the cache*",
    ])
    saved_study = saved(out / "study.jsonl")
    # The T2 samples are the first run's, from the cache; greedy's one answer stands for its four samples.
    assert [s for s in saved_study if s["temperature"] == 2.0] == saved(out / "hot.jsonl")
    greedy = [s["completion"] for s in saved_study if s["temperature"] == 0.0 and s["task_id"] == "add"]
    assert len(greedy) == 4 and len(set(greedy)) == 1 and greedy[0].startswith(ADD_BODY)
    data = read_report(report)
    samples = data["samples"]  # type: ignore[assignment]
    counts: dict[float, dict[str, list[int]]] = {}
    for sample in samples:  # type: ignore[attr-defined]
        tally = counts.setdefault(sample["temperature"], {}).setdefault(sample["task_id"], [0, 0])
        tally[0] += 1
        tally[1] += sample["verdict"] == "passed"
    assert counts[0.0]["add"] == [4, 4]  # the trained answer, greedy
    for suite in data["suites"]:  # type: ignore[attr-defined]
        tasks = counts[suite["temperature"]]
        for k in (1, 2, 4):
            by_hand = sum(1 - math.comb(n - c, k) / math.comb(n, k) for n, c in tasks.values()) / len(tasks)
            assert suite["pass_at_k"][f"pass@{k}"] == pytest.approx(by_hand)
        figures = "  ".join(f"pass@{k} = {suite['pass_at_k'][f'pass@{k}'] * 100:.2f}%*" for k in (1, 2, 4))
        study.stdout.fnmatch_lines([f"hand-written at T{suite['temperature']:g}: 2 problems, n = 4 samples each: {figures}"])
    best = data["temperature_study"]["hand-written"]  # type: ignore[index]
    for metric, chosen in best.items():
        values = {s["temperature"]: s["pass_at_k"][metric] for s in data["suites"]}  # type: ignore[attr-defined]
        assert chosen["value"] == max(values.values()) and values[chosen["temperature"]] == chosen["value"]
    study.stdout.fnmatch_lines(["hand-written, best temperature for each k: pass@1 = *% at T* *"])
    outcomes = study.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 16
    assert sorted(s["verdict"] == "passed" for s in samples) == sorted(  # type: ignore[attr-defined]
        [True] * outcomes.get("passed", 0) + [False] * outcomes.get("failed", 0))
    ids = [line.split(" ")[0] for line in pytester.runpytest(*common, "--passk-temperature=0,2", "--collect-only", "-q").stdout.lines
           if "::add[" in line]
    assert ids == [f"problem_add.py::add[T{t}-{i}]" for t in ("0", "2") for i in range(4)]


def test_gpu_batch_is_sized_from_free_memory() -> None:
    """A Llama-shaped 0.94B model (16 layers, 2048 wide, 16 heads), bf16, 640 tokens a sequence:
    2 x 16 x 16 x 128 x 2 bytes = 128 KiB of cache a token, 80 MiB a sequence and 0.6 MiB of logits."""
    from pytest_passk.sources.transformers_model import MAX_GPU_BATCH, batch_for_memory

    config = transformers.LlamaConfig(num_hidden_layers=16, hidden_size=2048, num_attention_heads=16, vocab_size=50_000)
    per_sequence = 2 * 16 * 16 * 128 * 2 * 640 + 12 * 50_000
    assert batch_for_memory(config, torch.bfloat16, 640, 100 * per_sequence) == 32  # 60 fit: a multiple of 32
    assert batch_for_memory(config, torch.bfloat16, 640, 500 * per_sequence) == 288  # 300 fit
    assert batch_for_memory(config, torch.bfloat16, 640, 140 << 30) == MAX_GPU_BATCH
    assert batch_for_memory(config, torch.float32, 640, 100 * per_sequence) == 16  # 30 fit: a power of two below 32
    assert batch_for_memory(config, torch.bfloat16, 640, 0) == 1
    # Grouped-query attention: a quarter of the heads keep keys and values, four times the sequences.
    grouped = transformers.LlamaConfig(num_hidden_layers=16, hidden_size=2048, num_attention_heads=16,
                                       num_key_value_heads=4, vocab_size=50_000)
    assert batch_for_memory(grouped, torch.bfloat16, 640, 400 * per_sequence) >= 4 * 128


def test_two_replicas_share_the_jobs(pytester: pytest.Pytester, random_model: Path) -> None:
    """Data parallelism on the CPU: two replicas (--passk-device cpu,cpu) each sample their share,
    and greedy samples (which no batch or seed decides) are those of one replica."""
    write_problems(pytester)
    out = pytester.mkdir("out")
    pytester.makeini("[pytest]\nnorecursedirs = out\n")
    common = ["-p", "no:xdist", "--model", str(random_model), "--passk-max-new-tokens=8"]
    sampled = pytester.runpytest(*common, "--samples", "4", "--passk-device=cpu,cpu", f"--passk-json={out / 'two.json'}",
                                 f"--passk-cache-dir={out / 'two'}")
    sampled.stdout.fnmatch_lines(["passk: 12 samples generated, 0 from the cache*"])
    generation = read_report(out / "two.json")["run"]["generation"]  # type: ignore[index]
    shares = generation["replicas"]
    assert [share["device"] for share in shares] == ["cpu", "cpu"]
    assert sum(share["samples"] for share in shares) == 12 and all(share["samples"] >= 4 for share in shares)
    greedy = {}
    for devices in ("cpu", "cpu,cpu"):
        run = pytester.runpytest(*common, f"--passk-device={devices}", f"--passk-cache-dir={out / devices}",
                                 f"--passk-save-completions={out / (devices + '.jsonl')}")
        run.stdout.fnmatch_lines(["passk: 3 samples generated*"])
        greedy[devices] = [(s["task_id"], s["completion"]) for s in saved(out / (devices + ".jsonl"))]
    assert greedy["cpu"] == greedy["cpu,cpu"]


def test_share_jobs_balances_the_work() -> None:
    from pytest_passk.sources.replicas import share_jobs
    from pytest_passk.sources.sampling import Job

    jobs = [Job(str(i), "", count) for i, count in enumerate([10, 10, 10, 10, 5, 5])]
    shares = share_jobs(jobs, 2, lambda job: 100)
    assert sorted(sum(j.count for j in share) for share in shares) == [25, 25]
    assert sorted(j.key for share in shares for j in share) == [str(i) for i in range(6)]
    assert share_jobs(jobs[:1], 3, lambda job: 1)[1:] == [[], []]
