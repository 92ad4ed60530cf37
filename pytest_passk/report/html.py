"""``--passk-html``: the report as one self-contained page (inline CSS and SVG, no script, no network)."""

from __future__ import annotations

import math
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from ..scoring.confidence import bootstrap_interval
from ..scoring.estimator import pass_at_k
from ..scoring.summary import task_order
from ..sources.sampling import temperature_label
from ..verdicts import Verdict

__all__ = ["write_html", "pass_at_k_curve", "temperature_svg"]

# By the verdict's name, as the JSON document spells it.
VERDICT_COLOURS = {Verdict.PASSED.value: "#2e7d32", Verdict.FAILED.value: "#c62828", Verdict.TIMEOUT.value: "#ef6c00",
                   Verdict.CRASHED.value: "#6a1b9a", Verdict.OOM.value: "#4527a0", Verdict.SUSPICIOUS.value: "#f9a825",
                   Verdict.ERROR.value: "#616161"}
CURVE_POINTS = 24
CURVE_RESAMPLES = 2000
# One colour per k in the temperature study's figure.
LINE_COLOURS = ("#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f", "#5d4037", "#ad1457")

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}th,td{padding:.25em .6em;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{background:#f6f6f6}.num{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#777}
.PASS{color:#2e7d32;font-weight:600}.FAIL{color:#c62828;font-weight:600}
.bar{display:flex;height:1.1em;min-width:300px;border-radius:3px;overflow:hidden;background:#eee}
.bar span{display:block;height:100%}table.problems{width:100%}.rate{background:#2e7d32;height:.9em;display:block}
details{margin:.15em 0}summary{cursor:pointer}pre{background:#f7f7f7;padding:.5em;overflow:auto;max-height:24em;margin:.2em 0}
.verdict{font-weight:600}
"""


def pass_at_k_curve(per_problem: list[dict[str, Any]], n_min: int, level: float | None) -> list[tuple[int, float, float, float]]:
    """(k, pass@k, low, high) at up to CURVE_POINTS values of k from 1 to ``n_min``, spaced evenly in log k."""
    if n_min < 1 or not per_problem:
        return []
    ks = sorted({max(1, min(n_min, round(math.exp(x)))) for x in np.linspace(0, math.log(n_min), CURVE_POINTS)})
    curve = []
    for k in ks:
        values = [pass_at_k(int(p["n"]), int(p["c"]), k) for p in per_problem]
        mean = float(np.mean(values))
        low, high = bootstrap_interval(values, level, CURVE_RESAMPLES) if level is not None else (mean, mean)
        curve.append((k, mean, low, high))
    return curve


def _curve_svg(curve: list[tuple[int, float, float, float]]) -> str:
    width, height, left, bottom, top, right = 560, 300, 50, 40, 15, 15
    if not curve:
        return '<p class="muted">Too few samples for a curve.</p>'
    k_max = max(k for k, *_ in curve)

    def x(k: int) -> float:
        share = math.log(k) / math.log(k_max) if k_max > 1 else 0.0
        return left + share * (width - left - right)

    def y(value: float) -> float:
        return top + (1.0 - value) * (height - top - bottom)

    band = [f"{x(k):.1f},{y(high):.1f}" for k, _, _, high in curve] + [f"{x(k):.1f},{y(low):.1f}" for k, _, low, _ in reversed(curve)]
    line = " ".join(f"{x(k):.1f},{y(mean):.1f}" for k, mean, _, _ in curve)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="pass@k curve">',
             f'<polygon points="{" ".join(band)}" fill="#90caf9" opacity="0.5"/>',
             f'<polyline points="{line}" fill="none" stroke="#1565c0" stroke-width="2"/>']
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="11">{tick * 100:.0f}%</text>')
    for k in sorted({1, k_max, *[k for k in (10, 100, 1000) if k < k_max]}):
        parts.append(f'<text x="{x(k):.1f}" y="{height - bottom + 16}" text-anchor="middle" font-size="11">{k}</text>')
    parts.append(f'<text x="{(left + width - right) / 2}" y="{height - 6}" text-anchor="middle" font-size="12">k (log scale)</text>')
    for k, mean, _, _ in curve:
        parts.append(f'<circle cx="{x(k):.1f}" cy="{y(mean):.1f}" r="2.5" fill="#1565c0"><title>pass@{k} = {mean * 100:.2f}%</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def temperature_svg(suite: str, figures: list[dict[str, Any]], best: dict[str, dict[str, Any]]) -> str:
    """pass@k against the sampling temperature, one line per k, the best temperature of each
    k marked: the Codex paper's figure 5 for this run. ``figures``: the suite's summaries."""
    width, height, left, bottom, top, right = 560, 300, 50, 40, 15, 110
    points = sorted((float(f["temperature"]), f["pass_at_k"]) for f in figures if f.get("temperature") is not None)
    metrics = [m for m in best if all(m in values for _, values in points)]
    if len(points) < 2 or not metrics:
        return ""
    low_t, high_t = points[0][0], points[-1][0]

    def x(temperature: float) -> float:
        return left + (temperature - low_t) / ((high_t - low_t) or 1.0) * (width - left - right)

    def y(value: float) -> float:
        return top + (1.0 - value) * (height - top - bottom)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="pass@k against temperature for {escape(suite)}" class="temperature-study">']
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="11">{tick * 100:.0f}%</text>')
    for temperature, _ in points:
        parts.append(f'<text x="{x(temperature):.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                     f'font-size="11">{temperature:g}</text>')
    parts.append(f'<text x="{(left + width - right) / 2}" y="{height - 6}" text-anchor="middle" '
                 f'font-size="12">sampling temperature</text>')
    for position, metric in enumerate(metrics):
        colour = LINE_COLOURS[position % len(LINE_COLOURS)]
        line = " ".join(f"{x(t):.1f},{y(values[metric]):.1f}" for t, values in points)
        parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for temperature, values in points:
            parts.append(f'<circle cx="{x(temperature):.1f}" cy="{y(values[metric]):.1f}" r="3" fill="{colour}">'
                         f'<title>{escape(metric)} at {temperature_label(temperature)} = {values[metric] * 100:.2f}%</title></circle>')
        chosen = best[metric]
        parts.append(f'<circle cx="{x(float(chosen["temperature"])):.1f}" cy="{y(float(chosen["value"])):.1f}" r="7" '
                     f'fill="none" stroke="{colour}" stroke-width="2" class="best"><title>best for {escape(metric)}: '
                     f'{temperature_label(float(chosen["temperature"]))}</title></circle>')
        legend_y = top + 14 + position * 18
        parts.append(f'<line x1="{width - right + 12}" x2="{width - right + 32}" y1="{legend_y - 4}" y2="{legend_y - 4}" '
                     f'stroke="{colour}" stroke-width="2"/><text x="{width - right + 38}" y="{legend_y}" font-size="12">'
                     f'{escape(metric)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _temperature_study(document: dict[str, Any]) -> str:
    study = document.get("temperature_study") or {}
    parts = []
    for suite, best in study.items():
        figures = [s for s in document["suites"] if s["name"] == suite and s.get("in_study")]
        rows = ""
        for metric, b in best.items():
            interval = b.get("interval")
            band = f"[{interval[0] * 100:.1f}, {interval[1] * 100:.1f}]" if interval else ""
            rows += (f'<tr><td>{escape(metric)}</td><td class="num">{temperature_label(float(b["temperature"]))}</td>'
                     f'<td class="num">{_percent(b["value"])}</td><td class="num">{band}</td></tr>')
        parts.append(f'<h3>{escape(suite)}</h3>{temperature_svg(suite, figures, best)}'
                     f'<table class="best-temperatures"><tr><th>metric</th><th>best temperature</th><th>value</th>'
                     f'<th>interval</th></tr>{rows}</table>')
    return "<h2>pass@k over temperature</h2>" + "".join(parts) if parts else ""


def _verdict_bar(verdicts: dict[str, int]) -> str:
    total = sum(verdicts.values()) or 1
    spans = "".join(
        f'<span style="width:{count / total * 100:.3f}%;background:{VERDICT_COLOURS.get(v, "#999")}" title="{escape(v)}: {count}"></span>'
        for v, count in verdicts.items() if count
    )
    legend = ", ".join(f'<span style="color:{VERDICT_COLOURS.get(v, "#999")}">{count} {escape(v)}</span>'
                       for v, count in verdicts.items() if count)
    return f'<div class="bar">{spans}</div><div>{legend}</div>'


def _percent(value: Any) -> str:
    return "" if value is None else f"{float(value) * 100:.2f}%"


def _summary_table(document: dict[str, Any]) -> str:
    rows = []
    for suite in document["suites"]:
        figures = []
        for metric, value in suite["pass_at_k"].items():
            interval = suite["intervals"].get(metric)
            band = f' <span class="muted">[{interval[0] * 100:.1f}, {interval[1] * 100:.1f}]</span>' if interval else ""
            figures.append(f"{escape(metric)} = <b>{_percent(value)}</b>{band}")
        paper = suite.get("paper", {})
        extra = "".join(f"<div>{escape(label)}: {_percent(paper[key])}</div>"
                        for key, label in (("pass@1_mean_logprob", "pass@1, mean log-p pick"),
                                           ("pass@1_sum_logprob", "pass@1, sum log-p pick"),
                                           ("oracle_pass@n", "oracle pass@n"), ("unique_fraction", "unique completions"))
                        if paper.get(key) is not None)
        n = suite["n_min"] if suite["n_min"] == suite["n_max"] else f'{suite["n_min"]}-{suite["n_max"]}'
        rows.append(f'<tr><td>{escape(suite["label"])}</td><td class="num">{suite["problems"]}</td><td class="num">{n}</td>'
                    f'<td>{"<br>".join(figures)}</td><td>{extra}</td><td>{_verdict_bar(suite["verdicts"])}</td></tr>')
    level = next((s["confidence_level"] for s in document["suites"] if s.get("confidence_level")), None)
    note = f'<p class="muted">Intervals: {level * 100:g}% bootstrap over problems.</p>' if level else ""
    return ('<table id="summary"><tr><th>suite</th><th>problems</th><th>n</th><th>pass@k</th><th>from the paper</th>'
            f'<th>verdicts</th></tr>{"".join(rows)}</table>{note}')


def _gates(document: dict[str, Any]) -> str:
    if not document["gates"]:
        return ""
    rows = "".join(
        f'<tr><td>{escape(g["line"].rsplit("  ", 1)[0])}</td><td class="{"PASS" if g["passed"] else "FAIL"}">'
        f'{"PASS" if g["passed"] else "FAIL"}</td></tr>' for g in document["gates"]
    )
    return f'<h2>Gates</h2><table id="gates">{rows}</table>'


def _comparison(document: dict[str, Any]) -> str:
    parts = []
    for comparison in document["baseline_comparison"]:
        metrics = "".join(
            f'<tr><td>{escape(metric)}</td><td class="num">{_percent(f["baseline"])}</td><td class="num">{_percent(f["current"])}</td>'
            f'<td class="num">{(f["current"] - f["baseline"]) * 100:+.2f}</td><td class="num">{f["p_value_drop"]:.3f}</td></tr>'
            for metric, f in comparison["metrics"].items()
        )
        changed = ""
        for key in ("worse", "better"):
            items = comparison.get(key, [])
            listed = ", ".join(f'{escape(c["task_id"])} ({c["change"] * 100:+.0f})' for c in items[:40])
            changed += f"<p><b>{len(items)} {key}</b> by {escape(comparison.get('changes_by', ''))}: {listed}{' ...' if len(items) > 40 else ''}</p>"
        parts.append(f'<h3>{escape(comparison["suite"])} vs {escape(comparison["baseline"])} '
                     f'({comparison["common_problems"]} common problems)</h3>'
                     f'<table><tr><th>metric</th><th>baseline</th><th>now</th><th>points</th><th>p (drop)</th></tr>{metrics}</table>{changed}')
    return "<h2>Against the baseline</h2>" + "".join(parts) if parts else ""


def _bleu_cell(value: Any) -> str:
    return "" if value is None else f"{float(value):.1f}"


def _problems(document: dict[str, Any], suite: dict[str, Any]) -> str:
    samples: dict[str, list[dict[str, Any]]] = {}
    for sample in document["samples"]:
        if sample["suite"] == suite["name"] and (not suite.get("in_study") or sample["temperature"] == suite["temperature"]):
            samples.setdefault(sample["task_id"], []).append(sample)
    first = next(iter(suite["pass_at_k"]), None)
    ordered = sorted(suite["per_problem"], key=lambda p: (p["c"] / p["n"] if p["n"] else 0.0, task_order(p["task_id"])))
    rows = []
    for problem in ordered:
        rate = problem["c"] / problem["n"] if problem["n"] else 0.0
        sample_rows = "".join(
            f'<tr><td class="num">{s["index"]}</td><td class="verdict" style="color:{VERDICT_COLOURS.get(s["verdict"], "#999")}">'
            f'{escape(s["verdict"])}</td><td>{escape(s["message"])}</td><td class="num">{_bleu_cell(s.get("bleu"))}</td>'
            f'<td><details><summary>completion</summary><pre>{escape(s.get("completion") or "(none)")}</pre></details></td></tr>'
            for s in samples.get(problem["task_id"], [])
        )
        value = _percent(problem["pass_at_k"].get(first)) if first else ""
        rows.append(
            f'<tr><td><details><summary>{escape(problem["task_id"])}</summary><table><tr><th>#</th><th>verdict</th>'
            f'<th>message</th><th>BLEU</th><th></th></tr>{sample_rows}</table></details></td>'
            f'<td class="num">{problem["c"]}/{problem["n"]}</td><td style="width:40%"><span class="rate" style="width:{rate * 100:.2f}%">'
            f'</span></td><td class="num">{value}</td></tr>'
        )
    return (f'<h3>{escape(suite["label"])}: problems by pass rate</h3><table class="problems"><tr><th>problem</th><th>passed</th>'
            f'<th>pass rate</th><th>{escape(first or "")}</th></tr>{"".join(rows)}</table>')


def _bleu(suite: dict[str, Any]) -> str:
    bleu = suite.get("bleu") or {}
    if not bleu or not bleu.get("passed", {}).get("n") and not bleu.get("failed", {}).get("n"):
        return ""
    auc = bleu.get("separation_auc")
    cells = "".join(f'<td class="num">{bleu[side].get("n", 0)}</td><td class="num">{bleu[side].get("mean", 0):.1f}</td>'
                    f'<td class="num">{bleu[side].get("median", 0):.1f}</td>' for side in ("passed", "failed"))
    verdict = "" if auc is None else f"<p>Chance that a passing sample has a higher BLEU than a failing one of the same problem: <b>{auc:.3f}</b> (0.5 is a coin toss), over {bleu['problems_with_both']} problems with both.</p>"
    return (f'<h3>{escape(suite["label"])}: BLEU against the reference solution</h3><table><tr><th colspan=3>passing samples</th>'
            f'<th colspan=3>failing samples</th></tr><tr><th>n</th><th>mean</th><th>median</th><th>n</th><th>mean</th><th>median</th></tr>'
            f'<tr>{cells}</tr></table>{verdict}')


def write_html(path: Path, document: dict[str, Any]) -> None:
    run = document["run"]
    facts = "".join(f"<tr><th>{escape(str(key))}</th><td>{escape(str(value))}</td></tr>" for key, value in run.items()
                    if not isinstance(value, (dict, list)))
    if isinstance(run.get("isolation"), dict):
        facts += f"<tr><th>isolation</th><td>{escape(str(run['isolation'].get('description', '')))}</td></tr>"
    for key in ("model", "sampling", "generation"):
        if isinstance(run.get(key), dict):
            facts += f"<tr><th>{key}</th><td>{escape(', '.join(f'{k}={v}' for k, v in run[key].items()))}</td></tr>"
    curves = "".join(
        f'<h3>{escape(s["label"])}</h3>{_curve_svg(pass_at_k_curve(s["per_problem"], s["n_min"], s.get("confidence_level")))}'
        for s in document["suites"]
    )
    body = (f'<h1>pytest-passk report</h1><p class="muted">{escape(str(run.get("source", "")))} &middot; {escape(str(run.get("date", "")))}</p>'
            f'<h2>Summary</h2>{_summary_table(document)}{_gates(document)}{_comparison(document)}'
            f'{_temperature_study(document)}<h2>pass@k over k</h2>{curves}'
            f'<h2>Problems</h2>{"".join(_problems(document, s) for s in document["suites"])}'
            f'{"".join(_bleu(s) for s in document["suites"])}'
            f'<h2>Run</h2><table>{facts}</table>')
    page = f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>pytest-passk report</title><style>{STYLE}</style></head><body>{body}</body></html>\n'
    path.write_text(page, encoding="utf-8")
