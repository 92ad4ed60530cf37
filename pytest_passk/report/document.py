"""The run's report as one document: the JSON file, and what the HTML page shows."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..gates import GateVerdicts
from ..problems import Problem
from ..scoring.analysis import Analysis
from ..scoring.study import best_temperatures
from ..scoring.summary import SuiteSummary, task_order
from ..verdicts import SampleRecord

__all__ = ["problems_hash", "report_document", "write_json"]


def problems_hash(problems: list[Problem]) -> str:
    """One hash of every problem's content: two reports compare only if theirs match (a problem
    without data hashed as before there was any: saved baselines stay comparable)."""
    digest = hashlib.sha256()
    for problem in sorted(problems, key=lambda p: (p.suite, p.task_id)):
        data = (problem.data,) if problem.data else ()
        for part in (problem.suite, problem.task_id, problem.prompt, problem.test, problem.entry_point, *data):
            digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()


def report_document(summaries: list[SuiteSummary], records: list[SampleRecord], run: dict[str, Any],
                    analysis: Analysis, gates: GateVerdicts, extras: dict[str, list[dict[str, Any]]] | None = None,
                    completions: dict[str, list[str | None]] | None = None) -> dict[str, Any]:
    """The summary, pass@k per problem, the paper's metrics, gates and baseline comparison,
    and every sample (with what the model backend recorded, its BLEU, and, when
    ``completions`` is given, its text)."""
    extras = extras or {}

    def sample(record: SampleRecord) -> dict[str, Any]:
        recorded = extras.get(record.task_id, [])
        row = record.to_json() | (recorded[record.index] if 0 <= record.index < len(recorded) else {})
        scores = analysis.bleu.get(record.task_id)
        if scores is not None and 0 <= record.index < len(scores):
            row["bleu"] = scores[record.index]
        if completions is not None:
            texts = completions.get(record.task_id, [])
            row["completion"] = texts[record.index] if 0 <= record.index < len(texts) else None
        return row

    return {
        "run": run,
        "suites": [
            {key: value for key, value in asdict(s).items() if key != "per_problem"}
            | {"per_problem": [asdict(p) for p in s.per_problem],
               "label": s.label,
               "paper": analysis.paper.get(s.label, {}),
               "bleu": {k: v for k, v in analysis.bleu_separation.get(s.label, {}).items()}}
            for s in summaries
        ],
        # Per suite of a temperature study, per pass@k: its best temperature, value and interval.
        "temperature_study": {suite: {metric: asdict(b) for metric, b in best.items()}
                              for suite, best in best_temperatures(summaries).items()},
        "gates": [{"passed": g.passed, "line": g.line} for g in gates.outcomes],
        "baseline_comparison": gates.comparisons,
        "samples": [sample(r) for r in sorted(records, key=lambda r: (r.suite, task_order(r.task_id), r.index))],
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
