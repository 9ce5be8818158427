"""`ccapp model tiny DIR`: build the tiny offline chat model."""

from __future__ import annotations

import argparse
from pathlib import Path

from ccapp.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("model", help="build the tiny offline model")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    tiny = actions.add_parser(
        "tiny",
        help="build a small BPE tokenizer, a chat template and a 2-layer Llama into DIR, "
        "offline and deterministically",
    )
    tiny.add_argument("dir", metavar="DIR", type=Path, help="output folder (new or empty)")
    tiny.add_argument("--seed", type=int, default=0, help="weight initialisation seed (default 0)")
    tiny.add_argument(
        "--data",
        metavar="D",
        help="also train the tokenizer on this data's prompts and responses",
    )
    tiny.add_argument(
        "--layers",
        type=int,
        default=2,
        choices=range(1, 9),
        metavar="N",
        help="transformer layers, 1-8 (default 2)",
    )
    tiny.add_argument(
        "--hidden",
        type=int,
        default=64,
        choices=(32, 64, 128, 256, 512),
        help="hidden size (default 64)",
    )
    tiny.set_defaults(handler=run_tiny)


def run_tiny(args: argparse.Namespace) -> int:
    out: Path = args.dir.expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(
            "exists and is not an empty folder",
            where=str(out),
            fix="choose a new folder; nothing was overwritten",
        )
    texts: list[str] = []
    if args.data:
        from ccapp.engines.data import load_dataset_rows

        for row in load_dataset_rows(args.data).rows:
            texts.extend([row.request, row.harmful_response, row.safe_response or ""])
    from ccapp.engines.generation.tiny import build_tiny_model

    build_tiny_model(out, seed=args.seed, texts=texts, layers=args.layers, hidden=args.hidden)
    print(out)
    return 0
