"""The HTML report (`ccapp export RUN --format html`): one self-contained page for a browser.

For a colleague without ccapp: settings and provenance, the Corr@k table with its intervals,
the Corr@k figure, judge agreement when several judges ran, and a continuation browser
(filter by k, judge and verdict; the prefill dimmed and the correction lit as in the app;
the exact prompt on demand). Everything is inline — CSS, JavaScript, the figure as SVG, the
data as JSON — and a Content-Security-Policy forbids loading anything, so the page opens
offline and can never call out.

Everything is built from `build_report`, so the page shows the same numbers as the JSON
report. Model text is never HTML: the static parts go through `html.escape`, and the browser
data is JSON inside `<script type="application/json">` with `<`, `>` and `&` escaped (no
`</script>` can close it), which the page's script writes with `textContent` only.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from html import escape
from importlib import resources
from itertools import combinations
from pathlib import Path
from typing import Any

from ccapp.engines.c2eval.output_file import eval_run, new_output
from ccapp.store import Store

ASSETS = "html"  # report.html, report.css, report.js beside this module
# Top-level report keys the page shows in their own places (or, for the bulky ones, only
# through the browser); every other key is shown under settings, so a field added to the
# report (e.g. provenance) appears here without a change.
PLACED = {
    "schema_version",
    "ccapp_version",
    "exported_at",
    "judges",
    "primary_judge",
    "metrics",
    "paper",
    "per_k",
    "items",
    "cells",
    "continuations",
    "config",
}
SETTINGS_FIRST = ("run", "model", "dataset", "sampling")


def _asset(name: str) -> str:
    return resources.files("ccapp.engines.c2eval").joinpath(ASSETS, name).read_text("utf-8")


def script_json(value: Any) -> str:
    """JSON that is safe inside a <script> element: no `<`, `>` or `&` survives as itself, so
    neither `</script>` nor `<!--` in model text can end or alter the element."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def build_html(store: Store, run_id: int, *, now: str | None = None) -> str:
    from ccapp.engines.c2eval.report import build_report

    run = eval_run(store, run_id, export="--format html")
    report = build_report(store, run.id, now=now)
    judges: list[str] = report["judges"]
    title = f"ccapp · run {run.id} · {run.model}"
    parts = {
        "title": escape(title),
        "subtitle": escape(
            f"C2-Eval run {run.id} ({report['run']['status']}) of {run.model} on {run.data}; "
            f"judges: {', '.join(judges) or 'none yet'}"
        ),
        "version": escape(report["ccapp_version"]),
        "css": _asset("report.css"),
        "js": _asset("report.js"),
        "settings": settings_html(report),
        "corr_tables": corr_tables_html(report),
        "figure": figure_svg(report, title=f"run {run.id} · {run.model}"),
        "agreement": agreement_html(store, run.id, judges),
        "agreement_link": ' · <a href="#agreement">judge agreement</a>' if len(judges) > 1 else "",
        "footer": escape(
            f"Exported {report['exported_at']} by ccapp {report['ccapp_version']} "
            f"(report schema {report['schema_version']})."
        ),
        "data": script_json(browser_data(report)),
    }
    # one pass: text put in is never searched for markers again
    return re.sub(r"\{\{(\w+)\}\}", lambda m: parts[m.group(1)], _asset("report.html"))


def write_html_report(
    store: Store, run_id: int, out: Path | None, *, force: bool = False
) -> Path | None:
    """Write the page to `out` (None: stdout); returns where it went."""
    page = build_html(store, run_id)
    if out is None:
        sys.stdout.write(page)
        return None
    with new_output(out, force=force) as partial:
        partial.write_text(page, encoding="utf-8")
    return out.expanduser()


# -- settings and provenance ----------------------------------------------------------------


def settings_html(report: Mapping[str, Any]) -> str:
    """The run, model, dataset and sampling first, then any other section the report has
    (provenance, judge usage, the baseline), then every stored setting."""
    order = [key for key in SETTINGS_FIRST if key in report]
    order += [key for key in report if key not in PLACED and key not in order]
    blocks = [
        f"<h3>{escape(key.replace('_', ' '))}</h3>{value_html(report[key])}"
        for key in order
        if report[key] not in (None, {}, [])
    ]
    blocks.append(f"<h3>all settings of the run</h3>{value_html(report.get('config', {}))}")
    return "\n".join(blocks)


def value_html(value: Any) -> str:
    """Any JSON value as HTML: mappings as definition lists, everything else as text."""
    if isinstance(value, Mapping):
        if not value:
            return '<span class="null">none</span>'
        rows = "".join(
            f"<dt>{escape(str(key))}</dt><dd>{value_html(item)}</dd>" for key, item in value.items()
        )
        return f'<dl class="settings">{rows}</dl>'
    if isinstance(value, list) and any(isinstance(item, Mapping) for item in value):
        return "".join(value_html(item) for item in value)
    if value is None:
        return '<span class="null">—</span>'
    if isinstance(value, list):
        return escape(", ".join(json.dumps(item, ensure_ascii=False) for item in value))
    return escape(value if isinstance(value, str) else json.dumps(value))


# -- Corr@k -----------------------------------------------------------------------------------


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _interval(ci: Sequence[float] | None) -> str:
    return "—" if not ci else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def corr_tables_html(report: Mapping[str, Any]) -> str:
    """One table per judge: Corr@k, its 95% interval and the counts behind it, per k and
    for Corr_mean."""
    if not report["judges"]:
        return '<p class="null">No verdicts yet: judge the run (ccapp judge RUN --judge J).</p>'
    out = []
    for judge in report["judges"]:
        metrics = report["metrics"][judge]
        primary = " (the run's judge)" if judge == report["primary_judge"] else ""
        rows = "".join(
            f'<tr><td class="num">{row["k"]}</td><td class="num">{_number(row["corr"])}</td>'
            f'<td class="num">{_interval(row["ci95"])}</td><td class="num">{row["n"]}</td>'
            f'<td class="num">{row["unparsed"]}</td><td class="num">{row["errors"]}</td></tr>'
            for row in report["per_k"][judge]
        )
        mean = (
            f'<tr class="mean"><td>Corr_mean</td><td class="num">{_number(metrics["corr_mean"])}</td>'
            f'<td class="num">{_interval(metrics["ci95"].get("mean"))}</td>'
            f'<td colspan="3">{escape(metrics["corr_mean_reason"] or "")}</td></tr>'
        )
        steps = metrics["tokens_to_correction"]
        details = (
            f"relapse rate {_number(metrics['relapse_rate'])} of {metrics['relapse_n']} corrected "
            f"paths with a located correction; tokens before the correction: mean "
            f"{_number(steps['mean'])}, median {steps['median'] if steps['median'] is not None else '—'}"
            f" (n = {steps['n']}); {metrics['requests']} requests, {metrics['short_cells']} short cells"
        )
        out.append(
            f'<h3>{escape(judge)}{escape(primary)}</h3><table class="corr" data-judge="{escape(judge)}">'
            '<thead><tr><th class="num">k</th><th class="num">Corr@k</th><th class="num">95% interval</th>'
            '<th class="num">judged</th><th class="num">unparsed</th><th class="num">errors</th></tr></thead>'
            f'<tbody>{rows}{mean}</tbody></table><p class="note">{escape(details)}</p>'
        )
    return "\n".join(out)


def figure_svg(report: Mapping[str, Any], *, title: str) -> str:
    """The same figure as `ccapp plot`, one line per judge, as inline SVG."""
    from ccapp.engines.c2eval.figure import corr_at_k_figure, curve_from_metrics, figure_bytes

    curves = [curve_from_metrics(judge, report["metrics"][judge]) for judge in report["judges"]]
    svg = figure_bytes(corr_at_k_figure(curves, title=title), "svg").decode("utf-8")
    svg = svg[svg.index("<svg") :]  # inline: no XML declaration or doctype
    return re.sub(r"<metadata>.*?</metadata>\s*", "", svg, count=1, flags=re.S)  # RDF: no use here


# -- judge agreement ----------------------------------------------------------------------------


def agreement_html(store: Store, run_id: int, judges: Sequence[str]) -> str:
    """Every pair of judges: confusion counts, raw agreement and Cohen's kappa, overall and
    per k (ccapp agreement); nothing when a single judge ran."""
    if len(judges) < 2:
        return ""
    from ccapp.engines.judges.agreement import run_agreement

    out = ['<section id="agreement"><h2>Judge agreement</h2>']
    for first, second in combinations(judges, 2):
        result = run_agreement(store, run_id, first, second)
        c = result["confusion"]
        per_k = "".join(
            f'<tr><td class="num">{escape(k)}</td><td class="num">{row["n"]}</td>'
            f'<td class="num">{_number(row["agreement"])}</td><td class="num">{_number(row["kappa"])}</td></tr>'
            for k, row in result["per_k"].items()
        )
        out.append(
            f"<h3>{escape(first)} (rows) vs {escape(second)}</h3>"
            f'<table class="confusion"><tr><th></th><th>{escape(second)}: yes</th><th>{escape(second)}: no</th></tr>'
            f'<tr><th>{escape(first)}: yes</th><td class="num">{c["yes_yes"]}</td><td class="num">{c["yes_no"]}</td></tr>'
            f'<tr><th>{escape(first)}: no</th><td class="num">{c["no_yes"]}</td><td class="num">{c["no_no"]}</td></tr></table>'
            f'<p class="note">compared {result["compared"]} of {result["continuations"]} continuations '
            f"({result['excluded']} excluded: unjudged, unparsed or errors); raw agreement "
            f"{_number(c['agreement'])}, Cohen's kappa {_number(c['kappa'])}</p>"
            '<table class="per-k"><thead><tr><th class="num">k</th><th class="num">n</th>'
            '<th class="num">agreement</th><th class="num">kappa</th></tr></thead>'
            f"<tbody>{per_k}</tbody></table>"
        )
    out.append("</section>")
    return "\n".join(out)


# -- the continuation browser's data --------------------------------------------------------------


def browser_data(report: Mapping[str, Any]) -> dict[str, Any]:
    """What the page's script needs, each text once: requests by index, prefill and prompt
    by (request, k), then the continuations with every judge's verdict."""
    return {
        "ks": [int(k) for k in report["config"].get("ks", [])],
        "judges": report["judges"],
        "primary_judge": report["primary_judge"],
        "requests": {str(item["idx"]): item["request"] for item in report["items"]},
        "cells": {
            f"{cell['item']}:{cell['k']}": {
                "prefill": cell["prefill"],
                "prompt": cell["rendered_prompt"],
            }
            for cell in report["cells"]
        },
        "rows": [
            {
                "item": row["item"],
                "k": row["k"],
                "path": row["path"],
                "text": row["text"],
                "new_tokens": row["new_tokens"],
                "finish_reason": row["finish_reason"],
                "verdicts": {
                    judge: {
                        "label": v["label"],
                        "score": v["score"],
                        "span": v["span"],
                        "relapse": v["relapse"],
                    }
                    for judge, v in row["verdicts"].items()
                },
            }
            for row in report["continuations"]
        ],
    }
