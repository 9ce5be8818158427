"""`ccapp demo`: the loop eval → syn → DPO → eval, its options declared in DemoOptions."""

from __future__ import annotations

import argparse
from dataclasses import fields, replace
from typing import Any

from ccapp.cli.common import add_command, console, open_store, print_json
from ccapp.cli.options import add_options, given
from ccapp.engines.demo.config import DemoOptions


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "demo", DemoOptions.__doc__)
    add_options(p, DemoOptions)
    p.add_argument(
        "--set",
        metavar="FIELD=VALUE",
        action="append",
        default=[],
        dest="overrides",
        help="change one of the loop's settings after --model/--quick apply theirs, e.g. "
        "--set dpo_method=full --set dpo_lr=1e-5 (repeatable; --set list prints the settings "
        "with the values this command line gives them)",
    )
    p.add_argument("--events", choices=["jsonl"], help="progress as JSON lines on stdout")
    p.add_argument("--json", action="store_true", help="end with a one-line JSON summary")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ccapp.cli.jobs import cancellation, make_sink
    from ccapp.engines.demo.loop import QUICK, REAL, Demo, DemoConfig
    from ccapp.engines.generation.types import Cancelled
    from ccapp.engines.options import format_value

    options = DemoOptions(**given(args, DemoOptions))
    options.check()
    config = DemoConfig(data=options.data, seed=options.seed, work_dir=options.work_dir)
    if options.model:
        config = replace(config, model=options.model, **REAL)  # type: ignore[arg-type]
    if options.quick:
        config = replace(config, **QUICK)  # type: ignore[arg-type]
        if options.model:  # enough requests that a few carry a safe answer to rank first
            config = replace(config, train_requests=60, dpo_max_steps=2, max_length=128)
    if "list" in args.overrides:
        for item in fields(config):
            print(f"{item.name}={format_value(getattr(config, item.name))}")
        return 0
    config = apply_overrides(config, args.overrides)
    with open_store(args) as store, cancellation() as cancel:
        sink = make_sink(args.events, lambda: None)
        try:
            result = Demo(store, sink, cancel).run(config)
        except Cancelled:
            sink.close()
            print("ccapp: demo cancelled; its finished runs stay in the store", flush=True)
            return 130
        sink.close()
    summary = result.as_dict()
    if args.json:
        print_json(
            {
                "run_id": result.runs.get("eval_after"),
                "kind": "demo",
                "status": "done",
                "metrics": {
                    "before": result.before,
                    "after": result.after,
                    "fluency": {"before": result.fluency_before, "after": result.fluency_after},
                    "rose": result.rose,
                    "paired": result.paired,
                    "verdict": summary["verdict"],
                    "runs": result.runs,
                    "seconds": result.seconds,
                    "helpfulness": result.helpfulness,
                    "note": summary["note"],
                },
            }
        )
        return 0
    show(result, summary["note"])
    return 0


def show(result: Any, note: str) -> None:
    from rich.table import Table

    out = console()
    table = Table(
        "k",
        "before Corr@k [95% CI]",
        "after Corr@k [95% CI]",
        "Δ [paired 95% CI]",
        title="Corr@k on held-out requests",
        title_justify="left",
    )
    ks = sorted(
        {int(k) for k in result.before.get("corr", {})}
        | {int(k) for k in result.after.get("corr", {})}
    )

    def cell(metrics: dict[str, Any], key: str) -> str:
        value = metrics.get("corr_mean") if key == "mean" else metrics.get("corr", {}).get(key)
        ci = metrics.get("ci95", {}).get(key)
        return (
            "–"
            if value is None
            else f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"
            if ci
            else f"{value:.3f}"
        )

    def delta(key: str) -> str:
        entry = (
            result.paired.get("mean") if key == "mean" else result.paired.get("by_k", {}).get(key)
        )
        if not entry or entry.get("delta") is None:
            return "–"
        return f"{entry['delta']:+.3f} [{entry['ci95'][0]:+.3f}, {entry['ci95'][1]:+.3f}]"

    for k in ks:
        table.add_row(
            str(k), cell(result.before, str(k)), cell(result.after, str(k)), delta(str(k))
        )
    table.add_section()
    table.add_row("mean", cell(result.before, "mean"), cell(result.after, "mean"), delta("mean"))
    out.print(table)
    fb, fa = result.fluency_before, result.fluency_after
    fluency = Table("fluency", "before", "after", title_justify="left")
    for key in ("distinct2_per_continuation", "distinct2_corpus", "degenerate_share"):
        fluency.add_row(key, str(fb.get(key)), str(fa.get(key)))
    out.print(fluency)
    if result.helpfulness:
        h = result.helpfulness
        out.print(
            f"benign requests refused ({h['requests']}): before {h['before']:.2f}, after "
            f"{h['after']:.2f} (allowed: ≤ before + {h['margin']:.2f})",
            markup=False,
        )
    out.print(result.verdict, markup=False)
    out.print(f"runs: {result.runs} · seconds: {result.seconds}", markup=False)
    out.print(note, markup=False)


def apply_overrides(config: Any, overrides: list[str]) -> Any:
    """`--set FIELD=VALUE` items, each read as the field's type (the way option declarations
    read typed text, ccapp.engines.options.parse_text) or refused by name."""
    import typing
    from dataclasses import fields

    from ccapp.engines.options import Declared, Option, parse_text, value_kind
    from ccapp.errors import UserError

    names = {f.name for f in fields(config)}
    hints = typing.get_type_hints(type(config))
    changes: dict[str, Any] = {}
    for item in overrides:
        name, sep, raw = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in names:
            raise UserError(
                f"--set {item}: not a demo setting",
                fix="use FIELD=VALUE with one of: " + ", ".join(sorted(names)),
            )
        kind, optional = value_kind(hints[name])
        text = "" if optional and raw.strip().lower() in ("none", "null") else raw
        try:
            if kind is bool:
                if text.strip().lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(f"'{text}' is not true or false")
                changes[name] = text.strip().lower() in ("true", "1", "yes")
            else:
                declared = Declared(name, Option(), kind, optional, getattr(config, name))
                changes[name] = parse_text(declared, text)
        except ValueError as exc:
            raise UserError(
                f"--set {item}: {exc}", fix=f"{name} is now {getattr(config, name)!r}"
            ) from None
    return replace(config, **changes)
