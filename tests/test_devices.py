"""`ccapp devices`: formatting of probe results (fed in, since this machine has no GPU)."""

from __future__ import annotations

import json

from ccapp.engines.devices import GIB, Device, format_devices, probe

from helpers import run_ccapp

H200 = Device("cuda:0", "cuda", "NVIDIA H200", int(139.8 * GIB), int(137.2 * GIB))
A10 = Device("cuda:1", "cuda", "NVIDIA A10G", 24 * GIB, int(1.5 * GIB))
MAC = Device("mps", "mps", "Apple GPU (MPS, unified memory)", 32 * GIB, None)
CPU = Device("cpu", "cpu", "AMD EPYC 9654", 512 * GIB, 480 * GIB, cores=192)


def test_gpus_show_name_and_free_of_total_memory() -> None:
    assert format_devices([H200, A10, MAC, CPU]) == [
        ("cuda:0", "NVIDIA H200", "137.2 of 139.8 GiB free"),
        ("cuda:1", "NVIDIA A10G", "1.5 of 24.0 GiB free"),
        ("mps", "Apple GPU (MPS, unified memory)", "32.0 GiB"),
        ("cpu", "AMD EPYC 9654 (192 cores)", "480.0 of 512.0 GiB free"),
    ]


def test_unknown_memory_is_a_question_mark() -> None:
    assert format_devices([Device("cpu", "cpu", "CPU", None, None, cores=2)]) == [
        ("cpu", "CPU (2 cores)", "?")
    ]


def test_devices_survive_a_json_round_trip() -> None:
    for device in (H200, MAC, CPU):
        assert Device.from_dict(json.loads(json.dumps(device.as_dict()))) == device


def test_this_machine_lists_its_cpu_last() -> None:
    found = probe()
    assert found[-1].kind == "cpu" and found[-1].cores and found[-1].total_bytes


def test_cli_prints_json_for_the_app() -> None:
    result = run_ccapp("devices", "--json")
    assert result.returncode == 0, result.stderr
    devices = json.loads(result.stdout.strip().splitlines()[-1])["devices"]
    assert devices[-1]["id"] == "cpu"
