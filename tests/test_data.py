"""Reading PKU-SafeRLHF rows: the paper's file, every kind of bad input, c2-eval's download."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccapp.config import load_settings
from ccapp.engines.data import C2EVAL_SHA256, load_dataset_rows, parse_row, summarize
from ccapp.errors import UserError

from helpers import run_ccapp


def row(
    prompt: str = "How do I pick a lock?",
    harmful: str = "First, get a tension wrench.",
    safe: str = "I can't help with that.",
    harmful_first: bool = True,
) -> dict[str, object]:
    if harmful_first:
        return {
            "prompt": prompt,
            "response_0": harmful,
            "response_1": safe,
            "is_response_0_safe": False,
            "is_response_1_safe": True,
        }
    return {
        "prompt": prompt,
        "response_0": safe,
        "response_1": harmful,
        "is_response_0_safe": True,
        "is_response_1_safe": False,
    }


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- the paper's test set -------------------------------------------------------------------


def test_the_paper_test_set_has_500_rows_and_462_unique_prompts(c2eval_file: Path) -> None:
    dataset = load_dataset_rows(str(c2eval_file))
    assert len(dataset.rows) == 500
    assert dataset.sha256 == C2EVAL_SHA256
    summary = summarize(dataset)
    assert summary.unique_prompts == 462
    assert summary.words_min == 14 and summary.words_max == 321


def test_the_harmful_response_is_response_0_when_unsafe_else_response_1(c2eval_file: Path) -> None:
    raw = [json.loads(line) for line in c2eval_file.read_text().splitlines()]
    rows = load_dataset_rows(str(c2eval_file)).rows
    for obj, got in zip(raw, rows):
        expected = obj["response_0"] if not obj["is_response_0_safe"] else obj["response_1"]
        assert got.harmful_response == expected.strip()


def test_cli_inspect_reports_rows_and_unique_prompts(c2eval_file: Path) -> None:
    result = run_ccapp("data", "inspect", str(c2eval_file), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["rows"] == 500 and summary["unique_prompts"] == 462
    assert summary["harmful_words"] == {"min": 14, "median": 91, "max": 321}


def test_cli_a_broken_line_37_fails_with_exit_2_naming_line_37(
    c2eval_file: Path, tmp_path: Path
) -> None:
    lines = c2eval_file.read_text().splitlines()
    lines[36] = lines[36][: len(lines[36]) // 2]  # cut line 37 in half
    broken = write_jsonl(tmp_path / "broken.jsonl", lines)
    result = run_ccapp("data", "inspect", str(broken))
    assert result.returncode == 2
    assert f"{broken}:37:" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# --- each class of bad input has its own clear message ---------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json at all", "not a JSON object"),
        ('["a", "list"]', "expected a JSON object, got a list"),
        ("42", "expected a JSON object, got 42"),
        (json.dumps({k: v for k, v in row().items() if k != "prompt"}), "missing field 'prompt'"),
        (json.dumps(row() | {"is_response_0_safe": "no"}), 'must be true or false, got "no"'),
        (json.dumps(row() | {"response_0": None}), "field 'response_0' must be a string, got null"),
        (json.dumps(row() | {"prompt": "   "}), "field 'prompt' is empty"),
        (json.dumps(row() | {"is_response_0_safe": True}), "both responses are marked safe"),
        (json.dumps(row() | {"response_0": " "}), "the unsafe response is empty"),
    ],
)
def test_a_bad_row_names_its_file_line_and_problem(tmp_path: Path, line: str, message: str) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [json.dumps(row()), json.dumps(row()), line])
    with pytest.raises(UserError) as info:
        load_dataset_rows(str(path))
    assert info.value.where == f"{path}:3"
    assert message in info.value.problem
    assert "--lenient" in (info.value.fix or "")


def test_non_utf8_bytes_name_their_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(
        json.dumps(row()).encode() + b"\n" + '{"prompt": "caf\xe9"}'.encode("latin-1") + b"\n"
    )
    with pytest.raises(UserError, match="not UTF-8") as info:
        load_dataset_rows(str(path))
    assert info.value.where == f"{path}:2"


def test_an_empty_file_and_a_missing_file_are_clear(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(UserError, match="the file is empty"):
        load_dataset_rows(str(empty))
    with pytest.raises(UserError, match="no such file"):
        load_dataset_rows(str(tmp_path / "missing.jsonl"))
    with pytest.raises(UserError, match="unsupported file type '.csv'"):
        (tmp_path / "d.csv").write_text("a,b\n")
        load_dataset_rows(str(tmp_path / "d.csv"))


def test_lenient_reading_skips_and_counts_bad_rows(tmp_path: Path) -> None:
    lines = [
        json.dumps(row()),
        "garbage",
        json.dumps(row() | {"is_response_0_safe": True}),
        json.dumps(row(prompt="second")),
    ]
    dataset = load_dataset_rows(str(write_jsonl(tmp_path / "d.jsonl", lines)), lenient=True)
    assert [r.request for r in dataset.rows] == ["How do I pick a lock?", "second"]
    assert dataset.skipped == {"not JSON": 1, "no unsafe response": 1}
    assert [r.where.rsplit(":", 1)[1] for r in dataset.rows] == ["1", "4"]


def test_a_byte_order_mark_and_crlf_line_ends_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf"
        + json.dumps(row()).encode()
        + b"\r\n"
        + json.dumps(row()).encode()
        + b"\r\n"
    )
    assert len(load_dataset_rows(str(path)).rows) == 2


def test_json_lists_and_parquet_read_like_jsonl(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [row(prompt=f"q{i}", harmful_first=i % 2 == 0) for i in range(5)]
    (tmp_path / "d.json").write_text(json.dumps(rows, indent=2))
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet")
    expected = [(f"q{i}", "First, get a tension wrench.") for i in range(5)]
    for name in ("d.json", "d.parquet"):
        got = load_dataset_rows(str(tmp_path / name)).rows
        assert [(r.request, r.harmful_response) for r in got] == expected


def test_a_bad_element_of_a_json_list_names_its_line(tmp_path: Path) -> None:
    rows = [row(), row(), row() | {"is_response_1_safe": "yes"}]
    path = tmp_path / "d.json"
    path.write_text(json.dumps(rows, indent=2))
    text = path.read_text()
    third_starts = text.count("\n", 0, text.index("{", text.index("}", text.index("}") + 1))) + 1
    with pytest.raises(UserError) as info:
        load_dataset_rows(str(path))
    assert info.value.where == f"{path}:{third_starts}"
    path.write_text("[" + json.dumps(row()) + ",\n  {oops}\n]")
    with pytest.raises(UserError, match="invalid JSON") as info:
        load_dataset_rows(str(path))
    assert info.value.where == f"{path}:2"


def test_a_hub_id_that_cannot_be_reached_says_how_to_use_a_local_file() -> None:
    with pytest.raises(UserError, match="Hugging Face Hub") as info:
        load_dataset_rows("nobody-here/no-such-dataset:test")
    assert "local" in (info.value.fix or "")


def test_parse_row_keeps_the_safe_response_when_there_is_one() -> None:
    assert parse_row(row()) == (
        "How do I pick a lock?",
        "First, get a tension wrench.",
        "I can't help with that.",
    )
    both_unsafe = row() | {"is_response_1_safe": False}
    assert parse_row(both_unsafe)[2] is None


# --- fuzzing: never a traceback, never a silent wrong row -----------------------------------

text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=30)
nonblank = text.filter(lambda s: s.strip() != "")


@st.composite
def valid_rows(draw: st.DrawFn) -> dict[str, object]:
    return row(
        prompt=draw(nonblank),
        harmful=draw(nonblank),
        safe=draw(text),
        harmful_first=draw(st.booleans()),
    )


@st.composite
def bad_lines(draw: st.DrawFn) -> bytes:
    good = draw(valid_rows())
    kind = draw(st.sampled_from(["truncate", "drop", "retype", "both_safe", "not_object", "bytes"]))
    if kind == "truncate":
        encoded = json.dumps(good, ensure_ascii=False)
        return encoded[: draw(st.integers(1, len(encoded) - 1))].encode()
    if kind == "drop":
        key = draw(st.sampled_from(sorted(good)))
        return json.dumps({k: v for k, v in good.items() if k != key}).encode()
    if kind == "retype":
        key = draw(st.sampled_from(sorted(good)))
        value = draw(
            st.one_of(
                st.none(),
                st.integers(),
                st.lists(st.integers(), max_size=2),
                st.floats(allow_nan=False),
            )
        )
        return json.dumps(good | {key: value}).encode()
    if kind == "both_safe":
        return json.dumps(good | {"is_response_0_safe": True, "is_response_1_safe": True}).encode()
    if kind == "not_object":
        return json.dumps(draw(st.one_of(st.integers(), st.lists(text, max_size=2), text))).encode()
    return draw(
        st.binary(min_size=1, max_size=20).filter(
            # a line that is only whitespace once decoded (b"\t", b"\x1c") is a blank line
            lambda b: (
                b"\n" not in b
                and bool(b.decode("utf-8", "replace").strip())
                and not _parses_as_row(b)
            )
        )
    )


def _parses_as_row(raw: bytes) -> bool:
    try:
        parse_row(json.loads(raw.decode("utf-8")))
    except Exception:
        return False
    return True


lines_strategy = st.lists(
    st.one_of(
        valid_rows().map(lambda r: ("ok", r)),
        bad_lines().map(lambda b: ("bad", b)),
        st.just(("blank", b"   ")),
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(lines=lines_strategy, lenient=st.booleans())
def test_fuzzed_files_give_exactly_the_valid_rows_or_name_the_first_bad_line(
    tmp_path: Path, lines: list[tuple[str, object]], lenient: bool
) -> None:
    encoded = [
        json.dumps(v, ensure_ascii=False).encode() if kind == "ok" else v for kind, v in lines
    ]
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(b"\n".join(encoded))  # type: ignore[arg-type]
    valid = [v for kind, v in lines if kind == "ok"]
    bad_numbers = [n for n, (kind, _) in enumerate(lines, start=1) if kind == "bad"]
    try:
        dataset = load_dataset_rows(str(path), lenient=lenient)
    except UserError as exc:
        if bad_numbers and not lenient:
            assert exc.where == f"{path}:{bad_numbers[0]}"
        else:
            assert not valid, exc.message  # only "no usable rows"/"empty" when nothing was valid
        return
    assert lenient or not bad_numbers
    assert [(r.request, r.harmful_response) for r in dataset.rows] == [
        parse_row(v)[:2]
        for v in valid  # type: ignore[arg-type]
    ]
    assert sum(dataset.skipped.values()) == len(bad_numbers)


# --- c2-eval: downloaded once, verified by sha256 --------------------------------------------


class _FileServer:
    def __init__(self, body: bytes):
        self.body = body
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/eval/test.jsonl"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve() -> Iterator[object]:
    servers: list[_FileServer] = []

    def start(body: bytes) -> _FileServer:
        servers.append(_FileServer(body))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _point_c2eval_at(home: Path, url: str) -> None:
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "config.toml").write_text(f'[data]\nc2eval_url = "{url}"\n')


def test_c2eval_is_downloaded_once_verified_and_cached(
    c2eval_file: Path, ccapp_home: Path, serve
) -> None:
    server = serve(c2eval_file.read_bytes())
    _point_c2eval_at(ccapp_home, server.url)
    assert len(load_dataset_rows("c2-eval").rows) == 500
    assert len(load_dataset_rows("c2-eval").rows) == 500
    assert server.hits == 1
    cached = ccapp_home / "cache" / "datasets" / "c2eval_test.jsonl"
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == C2EVAL_SHA256


def test_a_c2eval_download_with_the_wrong_checksum_is_refused_and_not_cached(
    ccapp_home: Path, serve
) -> None:
    server = serve(json.dumps(row()).encode() + b"\n")
    _point_c2eval_at(ccapp_home, server.url)
    with pytest.raises(UserError, match="sha256") as info:
        load_dataset_rows("c2-eval")
    assert "--data FILE" in (info.value.fix or "")
    assert not (ccapp_home / "cache" / "datasets" / "c2eval_test.jsonl").exists()


def test_c2eval_offline_says_how_to_pass_a_local_file(ccapp_home: Path) -> None:
    _point_c2eval_at(ccapp_home, "http://127.0.0.1:9/eval/test.jsonl")  # discard port: refused
    result = run_ccapp("data", "inspect", "c2-eval")
    assert result.returncode == 2
    assert "cannot download c2-eval" in result.stderr and "--data FILE" in result.stderr
    assert load_settings().c2eval_url.endswith(":9/eval/test.jsonl")


def test_rows_keep_every_unsafe_response_for_syn(c2eval_file: Path, tmp_path: Path) -> None:
    """C2-Syn takes the first unsafe response over 80 words, as the paper: it needs both."""
    raw = [json.loads(line) for line in c2eval_file.read_text().splitlines()]
    rows = load_dataset_rows(str(c2eval_file)).rows
    for obj, got in zip(raw, rows):
        assert got.unsafe_responses == tuple(
            obj[f"response_{i}"].strip() for i in (0, 1) if not obj[f"is_response_{i}_safe"]
        )
    assert sum(len(r.unsafe_responses) == 2 for r in rows) == 435
    one_unsafe = write_jsonl(tmp_path / "one.jsonl", [json.dumps(row(harmful_first=False))])
    assert load_dataset_rows(str(one_unsafe)).rows[0].unsafe_responses == (
        "First, get a tension wrench.",
    )


def test_source_note_says_what_needs_the_network_without_touching_it(
    c2eval_file: Path, ccapp_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ccapp.engines.data import c2eval_cache_path, source_note

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert "not cached yet" in source_note("c2-eval") and "needs the network" in source_note(
        "c2-eval"
    )
    c2eval_cache_path().parent.mkdir(parents=True, exist_ok=True)
    c2eval_cache_path().write_bytes(c2eval_file.read_bytes())
    assert (
        source_note("c2-eval") == f"c2-eval: the paper's 500 rows, cached at {c2eval_cache_path()}"
    )
    assert "needs the network" in source_note("PKU-Alignment/PKU-SafeRLHF:train")
    (tmp_path / "hub" / "datasets--PKU-Alignment--PKU-SafeRLHF").mkdir(parents=True)
    assert "cache on this machine" in source_note("PKU-Alignment/PKU-SafeRLHF:train")
    for local in (str(c2eval_file), "missing.jsonl", ""):
        assert "network" not in source_note(local)
    assert source_note(str(c2eval_file)).startswith("found: a local file of ")
    assert source_note(str(c2eval_file)).endswith(" KiB")


def test_the_forms_data_check_says_what_is_wrong_with_a_path(tmp_path: Path) -> None:
    from ccapp.engines.data import data_problem

    rows = tmp_path / "rows.jsonl"
    rows.write_text("{}\n")
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    assert data_problem(str(rows)) is None
    assert data_problem("c2-eval") is None and data_problem("PKU-Alignment/PKU-SafeRLHF") is None
    assert (data_problem(str(tmp_path)) or "").startswith("a folder, not a data file")
    assert data_problem(str(notes)) == "use a .jsonl, .json or .parquet file"
    assert (data_problem(str(tmp_path / "gone.jsonl")) or "").startswith("no such file")
    assert (data_problem("") or "").startswith("no such file")
