"""Learning the machine's devices without importing torch into the app process."""

from __future__ import annotations

import asyncio
import json
import sys

from ccapp.engines.devices import Device
from ccapp.errors import UserError


async def probe_in_child(timeout_s: float = 120.0) -> list[Device]:
    """Run `ccapp devices --json` as a child process and parse its answer."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ccapp",
        "devices",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout_s)
    except asyncio.TimeoutError:
        process.kill()
        raise UserError(
            "probing devices took too long", fix="run `ccapp devices` in a shell"
        ) from None
    if process.returncode != 0:
        message = err.decode(errors="replace").strip().splitlines()
        raise UserError(
            f"probing devices failed: {message[-1] if message else process.returncode}",
            fix="run `ccapp devices` in a shell to see the whole error",
        )
    lines = out.decode().strip().splitlines()
    return [Device.from_dict(d) for d in json.loads(lines[-1])["devices"]]
