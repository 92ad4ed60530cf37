"""Run canonical solutions on their inputs, in a child process of the controller (stdlib and numpy).

``python -m pytest_passk.plus.reference TASKS RESULT`` reads from TASKS the JSON
``[{"task_id", "code", "entry_point", "inputs": {"base": [...], "plus": [...]}}]`` and
writes to RESULT, per task, the outputs (tagged plain data, see
:mod:`pytest_passk.sandbox.plain`) and the seconds each input took, as EvalPlus's
``trusted_exec`` does: each input deep-copied, the function called once, timed.
What the solutions print goes nowhere; one that raises is reported, not fatal.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import sys
import time
from typing import Any

from ..sandbox import plain
from .digest import BIG_OUTPUT, DIGEST_SOURCE

digests: dict[str, Any] = {}
exec(DIGEST_SOURCE, digests)


def expected(output: Any, encoder: plain.Encoder) -> Any:
    """The output as plain data, or its digest where it is too large to carry in a test."""
    tree = encoder.encode(output)
    if len(json.dumps(tree)) <= BIG_OUTPUT:
        return tree
    floats = isinstance(output, float) or (isinstance(output, (list, tuple)) and all(isinstance(i, float) for i in output))
    return {"digest": digests["_passk_digest"](output), "floats": floats}


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    stage, index = "", 0
    try:
        exec(compile(task["code"], f"<{task['task_id']} canonical solution>", "exec"), namespace)
        function = namespace[task["entry_point"]]
        result: dict[str, Any] = {}
        encoder = plain.Encoder()
        for stage in ("base", "plus"):
            outputs, seconds = [], []
            for index, args in enumerate(task["inputs"][stage]):
                args = copy.deepcopy(args)
                started = time.perf_counter()
                output = function(*args)
                seconds.append(time.perf_counter() - started)
                outputs.append(expected(output, encoder))
            result[stage] = {"outputs": outputs, "seconds": seconds}
        return result
    except BaseException as exc:  # noqa: BLE001 - a broken solution is reported with its problem
        where = f" on {stage} input {index + 1}" if stage else ""
        return {"error": f"the canonical solution failed{where}: {type(exc).__name__}: {exc}"[:500]}


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as source:
        tasks = json.load(source)
    results = {}
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        for task in tasks:
            results[task["task_id"]] = run_task(task)
    with open(sys.argv[2], "w", encoding="utf-8") as out:
        json.dump(results, out)


if __name__ == "__main__":
    main()
