"""Provenance: every run stores, when its work starts, the model's revision, the data's
hash, the stack's versions, the device and the resolved sampling; the report's header
carries them; a Hub model's revision is the commit of its cached snapshot."""

from __future__ import annotations

import hashlib
import shutil
from importlib import metadata
from pathlib import Path

import pytest

from ccapp import __version__
from ccapp.cli import main
from ccapp.engines.c2eval.evaluate import EvalConfig, Evaluation
from ccapp.engines.c2eval.report import build_report
from ccapp.engines.generation import models
from ccapp.engines.generation.hub import snapshot_commit
from ccapp.engines.generation.models import local_revision
from ccapp.engines.provenance import pairs_provenance, record, tree_sha256
from ccapp.store import RunKind, Store, runs

from helpers import run_ccapp

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_an_eval_run_stores_its_provenance_and_the_report_header_shows_it(
    tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    with Store.open(tmp_path / "s.db") as store:
        config = EvalConfig(
            str(tiny_model_dir), str(c2eval_file), ks=(10, 20), paths=2, limit=3, device="cpu"
        )
        run = Evaluation(store).start(config)
        report = build_report(store, run.id)
    provenance = run.config["provenance"]
    assert provenance["model"] == {
        "spec": str(tiny_model_dir),
        "source": str(tiny_model_dir.resolve()),
        "revision": local_revision(tiny_model_dir),
    }
    assert provenance["model"]["revision"].startswith("local-sha256:")
    assert provenance["dataset"]["sha256"] == hashlib.sha256(c2eval_file.read_bytes()).hexdigest()
    versions = provenance["versions"]
    assert versions["ccapp"] == __version__
    for package in ("torch", "transformers", "trl", "peft"):
        assert versions[package] == metadata.version(package)
    assert provenance["device"]["requested"] == provenance["device"]["resolved"] == "cpu"
    assert provenance["sampling"] == run.config["sampling_resolved"]
    assert provenance["sampling"]["temperature"] == 0.8 and provenance["sampling"]["top_p"] == 0.7
    assert report["provenance"] == provenance  # the header: and so every export made from it
    assert report["model"]["revision"] == provenance["model"]["revision"]


def test_a_local_models_revision_follows_its_weights_not_its_place_or_times(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    same = shutil.copytree(tiny_model_dir, tmp_path / "copy")
    (same / "model.safetensors").touch()
    assert local_revision(same) == local_revision(tiny_model_dir)
    trained = shutil.copytree(tiny_model_dir, tmp_path / "trained")
    weights = bytearray((trained / "model.safetensors").read_bytes())
    header = 8 + int.from_bytes(weights[:8], "little")  # safetensors: then the tensors' bytes
    for i in range(header, len(weights), 97):  # as training does: every tensor changes a bit
        weights[i] ^= 1
    (trained / "model.safetensors").write_bytes(bytes(weights))  # same names, same sizes
    assert local_revision(trained) != local_revision(tiny_model_dir)
    # files over the whole-file limit are sampled; training still shows
    monkeypatch.setattr(models, "WHOLE_FILE_BYTES", 1024)
    assert local_revision(trained) != local_revision(tiny_model_dir)
    assert local_revision(same) == local_revision(tiny_model_dir)
    (trained / "config.json").write_text((tiny_model_dir / "config.json").read_text() + " ")
    assert local_revision(trained) != local_revision(same)


def _hub_cache(root: Path, repo: str, repo_type: str = "model") -> Path:
    """A Hub repository in Hugging Face's cache layout: refs name commits, snapshots hold
    one folder per commit."""
    folder = root / f"{repo_type}s--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(COMMIT)
    (folder / "refs" / "v1").write_text("f" * 40)
    snapshot = folder / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    return snapshot


def test_a_hub_models_revision_is_the_commit_of_its_cached_snapshot(tmp_path: Path) -> None:
    from huggingface_hub import snapshot_download

    cache = tmp_path / "hub"
    snapshot = _hub_cache(cache, "org/model")
    # the layout is the one huggingface_hub itself reads (offline)
    found = snapshot_download("org/model", cache_dir=cache, local_files_only=True)
    assert Path(found) == snapshot and Path(found).name == COMMIT
    assert snapshot_commit("org/model", cache_dir=cache) == COMMIT
    assert snapshot_commit("org/model", "v1", cache_dir=cache) == "f" * 40
    assert snapshot_commit("org/model", "a" * 40, cache_dir=cache) == "a" * 40  # a commit
    assert snapshot_commit("org/other", cache_dir=cache) is None
    _hub_cache(cache, "org/data", "dataset")
    assert snapshot_commit("org/data", repo_type="dataset", cache_dir=cache) == COMMIT


def test_a_resumed_run_that_finds_other_facts_keeps_the_earlier_provenance(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    with Store.open(tmp_path / "s.db") as store:
        run = runs.create_run(
            store, RunKind.EVAL, {"model_source": str(tiny_model_dir)}, model="tiny"
        )
        first = record(store, run)
        assert "provenance_earlier" not in first.config
        again = record(store, first)  # the same facts: only the time differs
        assert "provenance_earlier" not in again.config
        old = again.config["provenance"] | {"versions": {"torch": "2.0.0"}}
        stored = runs.update_config(store, run.id, {"provenance": old})
        resumed = record(store, stored)
    assert resumed.config["provenance_earlier"] == [old]
    assert resumed.config["provenance"]["versions"]["torch"] == metadata.version("torch")
    assert resumed.config["model_revision"] == local_revision(tiny_model_dir)
    assert resumed.fingerprint == run.fingerprint  # provenance never changes what a run is


def test_a_train_runs_pairs_are_pinned_by_their_bytes_or_their_syn_run(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    (pairs / "train.jsonl").write_text('{"prompt": "p", "chosen": "c", "rejected": "r"}\n')
    copy = shutil.copytree(pairs, tmp_path / "elsewhere")
    assert tree_sha256(pairs) == tree_sha256(copy)
    assert pairs_provenance(str(pairs)) == {"spec": str(pairs), "sha256": tree_sha256(pairs)}
    (copy / "train.jsonl").write_text('{"prompt": "p", "chosen": "r", "rejected": "c"}\n')
    assert tree_sha256(pairs) != tree_sha256(copy)
    assert pairs_provenance("run 3") == {"spec": "run 3", "syn_run": 3}


def test_revision_pins_hub_models_only(
    tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["eval", "--model", str(tiny_model_dir), "--data", str(c2eval_file), "--limit", "1"]
    code = main([*args, "--revision", "v1", "--device", "cpu", "--db", str(tmp_path / "s.db")])
    assert code == 2
    assert "--revision: " in capsys.readouterr().err
    with Store.open(tmp_path / "s.db") as store:
        assert runs.list_runs(store) == []  # refused before a run existed


def test_revision_picks_the_hub_snapshot_and_the_run_records_its_commit(
    tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    """A Hub model in Hugging Face's cache at two commits: --revision v1 loads v1's snapshot
    (offline, through huggingface_hub) and the run's revision is v1's commit, not main's."""
    cache = tmp_path / "hub"
    main_snapshot = _hub_cache(cache, "org/tiny")  # refs: main -> COMMIT, v1 -> f…f
    # main's snapshot holds no model (loading it would fail); v1's holds the tiny model
    shutil.copytree(tiny_model_dir, main_snapshot.parent / ("f" * 40))
    db = tmp_path / "s.db"
    done = run_ccapp(
        *("eval", "--model", "org/tiny", "--revision", "v1", "--data", str(c2eval_file)),
        *("--limit", "1", "--k", "10", "--paths", "1", "--device", "cpu", "--db", str(db)),
        env={"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 0, done.stderr
    with Store.open(db) as store:
        run = runs.list_runs(store)[0]
    assert run.config["revision"] == "v1"
    assert run.config["model_revision"] == run.config["provenance"]["model"]["revision"] == "f" * 40


@pytest.mark.gpu
def test_a_gpu_run_names_its_gpu() -> None:
    import torch

    from ccapp.engines.provenance import device_provenance

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU here")
    device = device_provenance({"device": "cuda:0", "engine": "hf"})
    assert device["resolved"] == "cuda:0" and device["cuda"] == torch.version.cuda
    assert device["gpus"][0]["name"] == torch.cuda.get_device_name(0)
    assert device["gpus"][0]["memory_gib"] > 1
    assert len(device_provenance({"device": "auto"})["gpus"]) == torch.cuda.device_count()
