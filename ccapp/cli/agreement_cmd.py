"""confusion matrix, Cohen's kappa and per-k agreement of two judges

ccapp agreement RUN --judges J1,J2: how far two judges that judged the same run agree; only
their yes/no verdicts are compared.
"""

from __future__ import annotations

import argparse

from ccapp.cli.common import add_command, console, open_store, print_json
from ccapp.cli.runs_cmd import run_id_arg
from ccapp.errors import UserError

SHOWN_DISAGREEMENTS = 20


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "agreement", __doc__)
    p.add_argument("run", metavar="RUN", type=run_id_arg)
    p.add_argument(
        "--judges", required=True, metavar="J1,J2", help="two judges that judged the run"
    )
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ccapp.engines.judges.agreement import run_agreement
    from ccapp.engines.judges.registry import check_judge_spec
    from ccapp.store import evals as rows_store
    from ccapp.store import runs

    names = [part.strip() for part in args.judges.split(",") if part.strip()]
    if len(names) != 2:
        raise UserError(
            f"'{args.judges}' does not name two judges",
            where="--judges",
            fix="e.g. --judges heuristic,openai:gpt-4o",
        )
    first, second = (check_judge_spec(n, "--judges") for n in names)
    if first == second:
        raise UserError(
            f"'{args.judges}' names {first} twice: a judge always agrees with itself",
            where="--judges",
            fix="name two different judges, e.g. --judges heuristic,openai:gpt-4o",
        )
    with open_store(args) as store:
        run_obj = runs.get_run(store, args.run)
        if run_obj.kind is not runs.RunKind.EVAL:
            raise UserError(
                f"run {run_obj.id} is {run_obj.kind.a_run}; only an eval run's continuations "
                "have verdicts to compare",
                fix="pick an eval run (ccapp runs list --kind eval)",
            )
        present = rows_store.judges_of(store, run_obj.id)
        for judge in (first, second):
            if judge not in present:
                raise UserError(
                    f"run {run_obj.id} has no verdicts from {judge} (it has: {', '.join(present) or 'none'})",
                    fix=f"judge it first: ccapp judge {run_obj.id} --judge {judge}",
                )
        result = run_agreement(store, run_obj.id, first, second)
    if args.json:
        print_json({"run_id": run_obj.id, "kind": "agreement", "status": "done", "metrics": result})
        return 0
    from rich.table import Table

    c = result["confusion"]
    out = console()
    matrix = Table(
        "",
        f"{second}: yes",
        f"{second}: no",
        title=f"run {args.run}: {first} (rows) vs {second}",
        title_justify="left",
    )
    matrix.add_row(f"{first}: yes", str(c["yes_yes"]), str(c["yes_no"]))
    matrix.add_row(f"{first}: no", str(c["no_yes"]), str(c["no_no"]))
    out.print(matrix)
    out.print(
        f"compared {result['compared']} of {result['continuations']} continuations "
        f"({result['excluded']} excluded: unjudged, unparsed or errors)"
    )
    kappa = c["kappa"] if c["kappa"] is not None else f"undefined ({c['kappa_undefined']})"
    out.print(f"raw agreement {c['agreement']}   Cohen's kappa {kappa}", markup=False)
    per_k = Table("k", "n", "agreement", "kappa")
    for k, row in result["per_k"].items():
        per_k.add_row(k, str(row["n"]), str(row["agreement"]), str(row["kappa"] or "–"))
    out.print(per_k)
    ids = result["disagreements"]
    if ids:
        shown = ", ".join(map(str, ids[:SHOWN_DISAGREEMENTS]))
        more = (
            f" … and {len(ids) - SHOWN_DISAGREEMENTS} more (--json lists all)"
            if len(ids) > SHOWN_DISAGREEMENTS
            else ""
        )
        out.print(f"disagreeing continuations (ids): {shown}{more}", markup=False)
    return 0
