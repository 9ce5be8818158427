"""`ccapp devices`: the GPUs, MPS and CPU that --device can name."""

from __future__ import annotations

import argparse

from ccapp.cli.common import console, print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "devices", help="list GPUs (name, memory total/free), MPS and the CPU"
    )
    parser.add_argument("--json", action="store_true", help="print the devices as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ccapp.engines.devices import format_devices, probe

    devices = probe()
    if args.json:
        print_json({"devices": [d.as_dict() for d in devices]})
        return 0
    from rich.table import Table

    table = Table("device", "name", "memory", title="Devices")
    for row in format_devices(devices):
        table.add_row(*row)
    console().print(table)
    return 0
