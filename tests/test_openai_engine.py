"""`--engine openai`: the same prompts through a real server, surviving faults, never doubling."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccapp.engines.c2eval.evaluate import EvalConfig, Evaluation
from ccapp.errors import UserError
from ccapp.store import RunStatus, Store, runs
from ccapp.store import evals as rows_store

from fake_openai import FakeOpenAIServer
from helpers import free_port, run_ccapp
from helpers import transformers_serve as serve_model


@pytest.fixture(scope="module")
def transformers_serve(tiny_model_dir: Path) -> Iterator[str]:
    """`transformers serve` hosting the tiny model on loopback: a real OpenAI-compatible server."""
    with serve_model(tiny_model_dir, start_timeout_s=120) as url:
        yield url


@pytest.fixture
def fake() -> Iterator[list[FakeOpenAIServer]]:
    servers: list[FakeOpenAIServer] = []
    yield servers
    for server in servers:
        server.close()


def config(model: Path, data: Path, url: str, **extra: object) -> EvalConfig:
    values = (
        dict(
            model=str(model),
            data=str(data),
            ks=(10, 20),
            paths=3,
            limit=3,
            engine="openai",
            base_url=url,
            served_model="fake",
            concurrency=4,
            max_new_tokens=8,
        )
        | extra
    )
    return EvalConfig(**values)  # type: ignore[arg-type]


def test_a_run_against_transformers_serve(
    transformers_serve: str, tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    db = tmp_path / "s.db"
    result = run_ccapp(
        "eval",
        "--engine",
        "openai",
        "--base-url",
        transformers_serve,
        "--model",
        str(tiny_model_dir),
        "--data",
        str(c2eval_file),
        "--limit",
        "2",
        "--k",
        "10,20",
        "--paths",
        "2",
        "--max-new-tokens",
        "6",
        "--json",
        "--db",
        str(db),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["status"] == "done" and summary["metrics"]["n"] == {"10": 4, "20": 4}
    with Store.open(db) as store:
        conts = rows_store.continuations(store, summary["run_id"])
        resolved = runs.get_run(store, summary["run_id"]).config["sampling_resolved"]
    assert len(conts) == 8 and all(c.new_tokens <= 6 for c in conts)
    # It rejects fields it does not know (HTTP 422): asked again without them, and the run says so.
    assert resolved["server_refused"] == ["top_k", "repetition_penalty"]
    assert "refused top_k and repetition_penalty" in result.stderr + result.stdout


def test_every_path_is_stored_once_through_429s_500s_hangs_and_drops(
    fake: list[FakeOpenAIServer], tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    script = {0: "429", 1: "500", 2: "hang", 3: "drop", 5: "429", 6: "429"}
    server = FakeOpenAIServer(plan=lambda number, body: script.get(number, "ok"), hang_s=3.0)
    fake.append(server)
    with Store.open(tmp_path / "s.db") as store:
        run = Evaluation(store).start(
            config(tiny_model_dir, c2eval_file, server.url, request_timeout=1.0)
        )
        conts = rows_store.continuations(store, run.id)
    assert run.status is RunStatus.DONE
    assert sorted((c.item_idx, c.k, c.path) for c in conts) == [
        (i, k, p) for i in range(3) for k in (10, 20) for p in range(3)
    ]
    assert {"429", "500", "hang", "drop"} <= set(server.behaviours)
    assert server.behaviours.count("ok") == 6  # one successful request per (request, k)


def test_a_server_that_ignores_n_is_asked_again_for_the_missing_paths(
    fake: list[FakeOpenAIServer], tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    server = FakeOpenAIServer(plan=lambda number, body: "one")
    fake.append(server)
    with Store.open(tmp_path / "s.db") as store:
        run = Evaluation(store).start(config(tiny_model_dir, c2eval_file, server.url, limit=2))
        texts = [c.text for c in rows_store.continuations(store, run.id)]
    assert len(texts) == 12 and len(set(texts)) == 12  # distinct seeds, distinct paths
    assert len(server.requests) == 12


def test_prompts_are_the_rendered_prefills_with_the_papers_sampling(
    fake: list[FakeOpenAIServer], tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    server = FakeOpenAIServer()
    fake.append(server)
    with Store.open(tmp_path / "s.db") as store:
        run = Evaluation(store).start(
            config(tiny_model_dir, c2eval_file, server.url, limit=1, ks=(10,))
        )
        cell = rows_store.get_cells(store, run.id)[0]
        run = runs.get_run(store, run.id)
    (request,) = server.requests
    assert request["prompt"] == cell.rendered_prompt
    assert request["n"] == 3 and request["max_tokens"] == 8
    assert request["temperature"] == 0.8 and request["top_p"] == 0.7 and request["model"] == "fake"
    # What `generate` would add: the tiny model's generation config sets neither, so
    # transformers' defaults, sent so the server cannot substitute its own.
    assert request["top_k"] == 50 and request["repetition_penalty"] == 1.0
    assert run.config["sampling_resolved"]["top_k"] == 50


def test_the_servers_get_the_models_generation_config_and_the_options(
    fake: list[FakeOpenAIServer], tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "qwen-like"
    shutil.copytree(tiny_model_dir, folder)
    generation = json.loads((folder / "generation_config.json").read_text())
    generation |= {"top_k": 20, "repetition_penalty": 1.1}
    (folder / "generation_config.json").write_text(json.dumps(generation))
    server = FakeOpenAIServer()
    fake.append(server)
    with Store.open(tmp_path / "s.db") as store:
        Evaluation(store).start(config(folder, c2eval_file, server.url, limit=1, ks=(10,)))
        Evaluation(store).start(
            config(folder, c2eval_file, server.url, limit=1, ks=(10,), top_k=0, temperature=0.0)
        )
    model_defaults, explicit = server.requests
    assert (model_defaults["top_k"], model_defaults["repetition_penalty"]) == (20, 1.1)
    assert (explicit["top_k"], explicit["repetition_penalty"]) == (-1, 1.1)  # -1: no top-k


def test_a_server_that_refuses_the_extra_fields_is_asked_without_them(
    fake: list[FakeOpenAIServer], tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    class Strict(FakeOpenAIServer):
        def _respond(self, handler, behaviour, body):  # type: ignore[no-untyped-def]
            if "top_k" in body:
                self._send(handler, 422, {"error": {"message": "Unexpected fields: top_k"}})
            else:
                super()._respond(handler, behaviour, body)

    server = Strict()
    fake.append(server)
    with Store.open(tmp_path / "s.db") as store:
        run = Evaluation(store).start(
            config(tiny_model_dir, c2eval_file, server.url, limit=2, concurrency=1)
        )
        stored = runs.get_run(store, run.id)
    assert run.status is RunStatus.DONE
    assert ["top_k" in body for body in server.requests] == [True] + [False] * 4
    assert stored.config["sampling_resolved"]["server_refused"] == ["top_k", "repetition_penalty"]


def test_an_unreachable_server_fails_the_run_resumably_with_the_fix(
    tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with Store.open(tmp_path / "s.db") as store:
        evaluation = Evaluation(store)
        with pytest.raises(UserError, match="cannot reach the generation server") as info:
            evaluation.start(
                config(tiny_model_dir, c2eval_file, url, request_timeout=1.0, max_retries=1)
            )
        assert "start the server" in (info.value.fix or "")
        assert evaluation.run is not None
        failed = runs.get_run(store, evaluation.run.id)
        assert failed.status is RunStatus.FAILED and failed.status.resumable
        assert "cannot reach" in (failed.error or "")


def test_a_wrong_model_name_names_the_option(
    fake: list[FakeOpenAIServer], tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    class NotFound(FakeOpenAIServer):
        def _respond(self, handler, behaviour, body):  # type: ignore[no-untyped-def]
            self._send(handler, 404, {"error": {"message": "model not found"}})

    server = NotFound()
    fake.append(server)
    with (
        Store.open(tmp_path / "s.db") as store,
        pytest.raises(UserError, match="does not serve a model") as info,
    ):
        Evaluation(store).start(config(tiny_model_dir, c2eval_file, server.url))
    assert info.value.where == "--served-model"


def test_a_run_judged_by_transformers_serve_and_the_heuristic(
    transformers_serve: str, tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    db = tmp_path / "s.db"
    spec = f"openai:{tiny_model_dir}@{transformers_serve}"
    result = run_ccapp(
        "eval",
        "--model",
        str(tiny_model_dir),
        "--data",
        str(c2eval_file),
        "--limit",
        "2",
        "--k",
        "10,20",
        "--paths",
        "2",
        "--max-new-tokens",
        "6",
        "--judge",
        spec,
        "--json",
        "--db",
        str(db),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    run_id = json.loads(result.stdout.splitlines()[-1])["run_id"]
    with Store.open(db) as store:
        labels = rows_store.verdict_labels(store, run_id, spec)
        assert len(labels) == rows_store.count_continuations(store, run_id) == 8
        assert set(rows_store.judges_of(store, run_id)) == {"heuristic", spec}
    # A random-weight model rarely says yes or no: its answers are kept and counted as unparsed.
    agreement = run_ccapp(
        "agreement", str(run_id), "--judges", f"heuristic,{spec}", "--db", str(db)
    )
    assert agreement.returncode == 0 and "Cohen's kappa" in agreement.stdout
    report = json.loads(run_ccapp("export", str(run_id), "--out", "-", "--db", str(db)).stdout)
    assert set(report["metrics"]) == {"heuristic", spec}
    judged = report["metrics"][spec]
    assert (
        sum(judged["n"].values())
        + sum(judged["unparsed"].values())
        + sum(judged["errors"].values())
        == 8
    )
    assert report["judge_usage"][spec]["calls"] == 8
