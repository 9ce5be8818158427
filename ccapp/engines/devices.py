"""What this machine can run on: CUDA GPUs (name, memory total/free), Apple MPS, the CPU.

`probe()` imports torch; `format_devices()` and `Device.from_dict()` do not, so the app can
show devices it read as JSON from a `ccapp devices --json` child process.
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass, fields
from typing import Any

GIB = 1024**3


@dataclass(frozen=True)
class Device:
    id: str  # what --device takes: cuda:0, mps, cpu
    kind: str  # cuda | mps | cpu
    name: str
    total_bytes: int | None
    free_bytes: int | None
    cores: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Device:
        """A device read back from `ccapp devices --json` (memory and cores may be absent)."""
        values: dict[str, Any] = {f.name: data.get(f.name) for f in fields(cls)}
        return cls(**values)


def probe() -> list[Device]:
    """GPUs first (each with free memory now), then MPS, then the CPU."""
    import torch

    found: list[Device] = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            free, total = torch.cuda.mem_get_info(index)
            found.append(Device(f"cuda:{index}", "cuda", props.name, int(total), int(free)))
    memory_total, memory_available = _system_memory()
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        found.append(Device("mps", "mps", "Apple GPU (MPS, unified memory)", memory_total, None))
    found.append(
        Device("cpu", "cpu", _cpu_name(), memory_total, memory_available, cores=os.cpu_count())
    )
    return found


def format_devices(devices: list[Device]) -> list[tuple[str, str, str]]:
    """Rows of (device id, name, memory) for a table; free memory where known."""
    rows = []
    for device in devices:
        name = device.name if device.kind != "cpu" else f"{device.name} ({device.cores} cores)"
        rows.append((device.id, name, _memory_text(device)))
    return rows


def _memory_text(device: Device) -> str:
    if device.total_bytes is None:
        return "?"
    total = f"{device.total_bytes / GIB:.1f} GiB"
    if device.free_bytes is None:
        return total
    return f"{device.free_bytes / GIB:.1f} of {total} free"


def _system_memory() -> tuple[int | None, int | None]:
    """(total, available) bytes from /proc/meminfo, or sysconf where that is missing."""
    try:
        info = {}
        with open("/proc/meminfo") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                info[key] = int(rest.split()[0]) * 1024
        return info.get("MemTotal"), info.get("MemAvailable")
    except (OSError, ValueError, IndexError):
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            return int(total), None
        except (ValueError, OSError, AttributeError):
            return None, None


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"
