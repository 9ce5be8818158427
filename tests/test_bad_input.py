"""Every kind of bad input a user can hand ccapp is refused the same way.

Data files, command-line options, config.toml, judge specs, model ids and folders, the
store file itself, and what ccapp wrote being fed back in (labelled files, exported pairs):
hypothesis generates bad cases of each class, and each must end with

- exit code 2 (a usage or input error, never 1, which means "the run failed"),
- stderr ending in one `… error: …` line that names where the problem is (file:line, the
  option, the setting or the run) and carries `Fix:`, with no traceback anywhere,
- the store exactly as it was (a dump of every table) and no file written.

Commands run in-process through `ccapp.cli.main` (a subprocess costs 1-2 s each); three
representative cases run as real processes to check the whole of their stderr. Examples are
derandomized, so CI sees the same cases on every run.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from ccapp.cli import main
from ccapp.engines.generation.models import parse_device, parse_dtype
from ccapp.engines.generation.presets import PRESETS
from ccapp.errors import UserError

from helpers import build_fixed_store, run_ccapp, stand_in_tokenizer

FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FEW = settings(FUZZ, max_examples=12)

# What a user can type: no NUL (argv cannot hold one), no lone surrogates, and nothing
# that starts a new line, so that "one line" means one line.
TYPED = st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"))
text = st.text(TYPED, max_size=12)
ERROR_LINE = re.compile(r"^ccapp( [a-z]+)*: error: ")


# --- running ccapp and checking what it did ------------------------------------------------


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str


def ccapp(*argv: str) -> Result:
    """`ccapp ARGV` in this process; stdin is not a terminal, as in a script."""
    out, err = io.StringIO(), io.StringIO()
    stdin, sys.stdin = sys.stdin, io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(argv))
            except SystemExit as exc:  # argparse's way out
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.stdin = stdin
    return Result(code, out.getvalue(), err.getvalue())


def assert_refused(result: Result, *names: str) -> str:
    """Exit 2, no traceback, and stderr ends with the one error line, naming one of `names`.

    Progress lines may come first (`model: resolve …`), but a handful at most.
    """
    assert result.code == 2, f"exit {result.code}\n{result.stderr}"
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if ERROR_LINE.match(line)]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert len(lines) <= 4, result.stderr
    line = errors[0]
    assert "Fix: " in line, line
    assert any(name in line for name in names), f"none of {names} in: {line}"
    return line


def dump(db: Path) -> list[str]:
    with closing(sqlite3.connect(db)) as conn:
        return list(conn.iterdump())


@dataclass(frozen=True)
class Scene:
    """A store with one judged eval run, and valid inputs next to it, all under `work`."""

    work: Path
    inputs: Path  # generated bad input goes here, outside what is compared
    db: Path
    run_id: int
    data: Path  # valid PKU-SafeRLHF rows
    labelled: Path  # valid {request, prefill, continuation, label} rows
    unloadable: Path  # resolves as a model folder but never loads: a missed check fails fast
    report: Path  # an existing file that --out must not overwrite

    def state(self) -> tuple[dict[str, bytes | None], list[str]]:
        """Every file and folder under `work` (SQLite's -wal/-shm aside) and every table."""
        files = {
            p.relative_to(self.work).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(self.work.rglob("*"))
            if p != self.db and not p.name.endswith(("-wal", "-shm"))
        }
        return files, dump(self.db)

    @contextmanager
    def unchanged(self) -> Iterator[None]:
        before = self.state()
        yield
        assert self.state() == before, "bad input changed the store or wrote a file"


HARMFUL = " ".join(f"word{i}" for i in range(90))


def pku_row(prompt: str = "How do I pick a lock?") -> dict[str, Any]:
    return {
        "prompt": prompt,
        "response_0": HARMFUL,
        "response_1": "I can't help with that.",
        "is_response_0_safe": False,
        "is_response_1_safe": True,
    }


@pytest.fixture
def scene(tmp_path: Path) -> Scene:
    work, inputs = tmp_path / "work", tmp_path / "inputs"
    work.mkdir()
    inputs.mkdir()
    db = work / "store.db"
    run_id = build_fixed_store(db)
    data = work / "rows.jsonl"
    data.write_text("".join(json.dumps(pku_row(f"How do I do {i}?")) + "\n" for i in range(3)))
    labelled = work / "labelled.jsonl"
    labelled.write_text(
        json.dumps(
            {"request": "r", "prefill": "p", "continuation": " However, no.", "label": "yes"}
        )
        + "\n"
    )
    unloadable = work / "unloadable-model"
    unloadable.mkdir()
    (unloadable / "config.json").write_text("{}")
    report = work / "report.json"
    report.write_text('{"kept": true}\n')
    return Scene(work, inputs, db, run_id, data, labelled, unloadable, report)


def refused_unchanged(scene: Scene, argv: list[str], *names: str) -> str:
    with scene.unchanged():
        return assert_refused(ccapp(*argv), *names)


# --- data files ----------------------------------------------------------------------------

FIELDS = ("prompt", "response_0", "response_1", "is_response_0_safe", "is_response_1_safe")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(text, inner, max_size=2),
    max_leaves=4,
)


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@st.composite
def bad_rows(draw: st.DrawFn) -> Any:
    """A JSON value that is not a usable PKU-SafeRLHF row, for one of the reasons a row fails."""
    row = pku_row()
    kind = draw(
        st.sampled_from(
            ["missing", "mistyped", "both safe", "blank prompt", "blank harmful", "not object"]
        )
    )
    if kind == "missing":
        del row[draw(st.sampled_from(FIELDS))]
    elif kind == "mistyped":
        name = draw(st.sampled_from(FIELDS))
        wanted = bool if name.startswith("is_") else str
        row[name] = draw(json_values.filter(lambda v: not isinstance(v, wanted)))
    elif kind == "both safe":
        row["is_response_0_safe"] = True
    elif kind == "blank prompt":
        row["prompt"] = draw(st.text(" \t\n", max_size=3))
    elif kind == "blank harmful":
        row["response_0"] = draw(st.text(" \t\n", max_size=3))
    else:
        return draw(json_values.filter(lambda v: not isinstance(v, dict)))
    return row


bad_lines = st.one_of(
    bad_rows().map(lambda v: json.dumps(v).encode()),
    st.text(TYPED, min_size=1, max_size=12)
    .filter(lambda t: bool(t.strip()) and not _is_json(t))
    .map(str.encode),
    st.binary(min_size=1, max_size=12).filter(lambda b: b"\n" not in b and not _is_utf8(b)),
)
DATA_COMMANDS = ("data inspect", "eval", "syn", "model tiny")


def data_argv(command: str, path: Path, scene: Scene) -> list[str]:
    """Each command that reads --data, with everything else valid."""
    if command == "data inspect":
        return ["data", "inspect", str(path)]
    if command == "model tiny":
        return ["model", "tiny", str(scene.work / "tiny-out"), "--data", str(path)]
    model = ["--model", str(scene.unloadable), "--db", str(scene.db)]
    return [command, *model, "--data", str(path)]


@FUZZ
@given(
    before=st.lists(st.integers(0, 99), max_size=3),
    blanks=st.integers(0, 2),
    bad=bad_lines,
    after=st.integers(0, 2),
    newline=st.sampled_from([b"\n", b"\r\n"]),
    command=st.sampled_from(DATA_COMMANDS),
)
def test_a_bad_line_in_a_jsonl_file_is_named_by_file_and_line(
    scene: Scene,
    before: list[int],
    blanks: int,
    bad: bytes,
    after: int,
    newline: bytes,
    command: str,
) -> None:
    """One bad row among thousands must cost one edit: the message says which line."""
    good = [json.dumps(pku_row(f"How do I do {i}?")).encode() for i in before]
    lines = [*good, *[b"   "] * blanks, bad, *[json.dumps(pku_row()).encode()] * after]
    path = scene.inputs / "rows.jsonl"
    path.write_bytes(newline.join(lines) + newline)
    bad_line = len(good) + blanks + 1
    refused_unchanged(scene, data_argv(command, path, scene), f"{path}:{bad_line}")


@FUZZ
@given(
    rows_before=st.integers(0, 3),
    bad=bad_rows(),
    rows_after=st.integers(0, 2),
    command=st.sampled_from(DATA_COMMANDS),
)
def test_a_bad_element_of_a_json_list_is_named_by_file_and_the_line_it_starts_on(
    scene: Scene, rows_before: int, bad: Any, rows_after: int, command: str
) -> None:
    elements = [pku_row()] * rows_before + [bad] + [pku_row()] * rows_after
    path = scene.inputs / "rows.json"
    path.write_text("[\n" + ",\n".join(json.dumps(e) for e in elements) + "\n]\n")
    refused_unchanged(scene, data_argv(command, path, scene), f"{path}:{rows_before + 2}")


@FEW
@given(cut=st.floats(0, 1, exclude_max=True), command=st.sampled_from(DATA_COMMANDS))
def test_a_truncated_json_list_is_refused_naming_the_file(
    scene: Scene, cut: float, command: str
) -> None:
    """A download or copy that stopped half-way is not read as the rows that arrived."""
    whole = "[\n" + ",\n".join(json.dumps(pku_row()) for _ in range(3)) + "\n]"
    path = scene.inputs / "rows.json"
    path.write_text(whole[: int(len(whole) * cut)])
    refused_unchanged(scene, data_argv(command, path, scene), str(path))


@FUZZ
@given(
    raw=st.binary(max_size=300),
    suffix=st.sampled_from([".jsonl", ".json", ".parquet", ".csv", ".txt", ""]),
    command=st.sampled_from(DATA_COMMANDS),
)
def test_arbitrary_bytes_as_a_data_file_are_refused_naming_the_file(
    scene: Scene, raw: bytes, suffix: str, command: str
) -> None:
    """Whatever the bytes and the suffix (CSV included, which ccapp does not read)."""
    path = scene.inputs / f"rows{suffix}"
    path.write_bytes(raw)
    refused_unchanged(scene, data_argv(command, path, scene), str(path))


@FEW
@given(
    field=st.sampled_from(FIELDS),
    kind=st.sampled_from(["dropped", "numbers", "nulls", "strings"]),
    rows=st.integers(1, 3),
)
def test_a_parquet_file_with_a_missing_or_mistyped_column_names_the_row(
    scene: Scene, field: str, kind: str, rows: int
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = [pku_row() for _ in range(rows)]
    for record in records:
        if kind == "dropped":
            del record[field]
        else:
            is_flag = field.startswith("is_")
            if kind == "strings" and not is_flag:  # a string where a string belongs is fine
                kind = "numbers"
            record[field] = {"numbers": 7, "nulls": None, "strings": "yes"}[kind]
    path = scene.inputs / "rows.parquet"
    pq.write_table(pa.Table.from_pylist(records), path)
    refused_unchanged(scene, ["data", "inspect", str(path)], f"{path}: row 1")


# --- command-line options ------------------------------------------------------------------


def _parses(kind: type, value: str) -> bool:
    try:
        kind(value)
    except ValueError:
        return False
    return True


def _valid_ks(value: str) -> bool:
    try:
        ks = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        return False
    return bool(ks) and all(k >= 1 for k in ks) and len(set(ks)) == len(ks)


def _valid(check: Any, value: str) -> bool:
    try:
        check(value)
    except UserError:
        return False
    return True


def ints_below(limit: int) -> st.SearchStrategy[str]:
    return st.integers(-(10**6), limit - 1).map(str)


not_int = text.filter(lambda t: not _parses(int, t))
not_float = text.filter(lambda t: not _parses(float, t))
non_finite = st.sampled_from(["nan", "NaN", "inf", "-inf", "Infinity"])
negative = st.floats(max_value=-1e-9, allow_nan=False, allow_infinity=False).map(repr)
not_positive = st.floats(max_value=0.0, allow_nan=False, allow_infinity=False).map(repr)
bad_device = text.filter(lambda t: not _valid(parse_device, t))
bad_dtype = text.filter(lambda t: not _valid(parse_dtype, t))


def option(name: str, *values: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[str, str]]:
    """`--name=VALUE` (with `=`, so that a value starting with '-' stays a value)."""
    return st.tuples(st.just(name), st.one_of(*values))


def choice(name: str, choices: tuple[str, ...]) -> st.SearchStrategy[tuple[str, str]]:
    return option(name, text.filter(lambda t: t not in choices))


EVAL_OPTIONS = st.one_of(
    *[
        option(name, ints_below(1), not_int)
        for name in (
            "--paths",
            "--max-new-tokens",
            "--limit",
            "--concurrency",
            "--judge-concurrency",
            "--batch-size",
        )
    ],
    option("--max-retries", ints_below(0), not_int),
    option("--seed", not_int),
    option("--temperature", negative, non_finite, not_float),
    option(
        "--top-p",
        not_positive,
        st.floats(min_value=1.0, exclude_min=True, allow_infinity=False).map(repr),
        non_finite,
        not_float,
    ),
    option("--top-k", ints_below(0), not_int),
    option("--repetition-penalty", not_positive, non_finite, not_float),
    option("--request-timeout", not_positive, non_finite, not_float),
    option(
        "--k",
        st.lists(st.integers(-5, 90), min_size=1, max_size=4)
        .filter(lambda ks: min(ks) < 1)
        .map(lambda ks: ",".join(map(str, ks))),
        st.lists(st.integers(1, 90), min_size=1, max_size=3).map(
            lambda ks: ",".join(map(str, [*ks, ks[0]]))
        ),
        text.filter(lambda t: not _valid_ks(t)),
    ),
    choice("--unit", ("words", "tokens")),
    choice("--engine", ("hf", "openai")),
    choice("--events", ("jsonl",)),
    option("--device", bad_device),
    option("--dtype", bad_dtype),
)


@FUZZ
@given(bad=EVAL_OPTIONS)
@example(bad=("--temperature", "nan"))  # NaN passes `< 0`: it once started a run
@example(bad=("--request-timeout", "inf"))
def test_a_bad_eval_option_is_refused_naming_the_option(scene: Scene, bad: tuple[str, str]) -> None:
    """Checked before anything loads: a missed check would reach the unloadable model."""
    name, value = bad
    argv = ["eval", "--model", str(scene.unloadable), "--data", str(scene.data)]
    refused_unchanged(scene, [*argv, "--db", str(scene.db), f"{name}={value}"], name)


SYN_OPTIONS = st.one_of(
    option("--limit", ints_below(1), not_int),
    option("--max-new-tokens", ints_below(1), not_int),
    option("--min-harmful-words", ints_below(0), not_int),
    option("--batch-size", ints_below(5), not_int),  # one group is five prompts
    option("--seed", not_int),
    option("--from-run", ints_below(1), not_int),
    option("--resume", ints_below(1), not_int),
    option("--temperature", negative, non_finite, not_float),
    option("--top-p", not_positive, non_finite, not_float),
    option("--top-k", ints_below(0), not_int),
    option("--repetition-penalty", not_positive, non_finite, not_float),
    choice("--engine", ("hf", "openai")),
    option("--device", bad_device),
    option("--dtype", bad_dtype),
)


@FUZZ
@given(bad=SYN_OPTIONS)
@example(bad=("--temperature", "nan"))
def test_a_bad_syn_option_is_refused_naming_the_option(scene: Scene, bad: tuple[str, str]) -> None:
    name, value = bad
    argv = ["syn", "--model", str(scene.unloadable), "--data", str(scene.data), "--all-prompts"]
    refused_unchanged(scene, [*argv, "--db", str(scene.db), f"{name}={value}"], name)


TRAIN_OPTIONS = st.one_of(
    *[
        option(name, ints_below(1), not_int)
        for name in (
            "--max-steps",
            "--batch-size",
            "--grad-accum",
            "--lora-r",
            "--lora-alpha",
            "--save-steps",
        )
    ],
    option("--max-length", ints_below(16), not_int),
    option("--lr", not_positive, non_finite, not_float),
    option("--beta", not_positive, non_finite, not_float),
    option("--epochs", not_positive, non_finite, not_float),
    option("--sft-weight", negative, non_finite, not_float),
    option(
        "--lora-dropout",
        negative,
        st.floats(min_value=1.0, allow_infinity=False).map(repr),
        non_finite,
        not_float,
    ),
    option("--num-processes", not_int),
    choice("--method", ("lora", "qlora", "full")),
    choice("--launcher", ("accelerate",)),
    option("--device", bad_device),
    option("--dtype", bad_dtype),
)


@FUZZ
@given(bad=TRAIN_OPTIONS)
def test_a_bad_train_option_is_refused_naming_the_option(
    scene: Scene, bad: tuple[str, str]
) -> None:
    """Checked before the pairs load: a missed check would fail on --pairs (an eval run)."""
    name, value = bad
    argv = ["train", "--pairs", str(scene.run_id), "--model", str(scene.unloadable)]
    refused_unchanged(scene, [*argv, "--db", str(scene.db), f"{name}={value}"], name)


def command_cases(scene: Scene) -> st.SearchStrategy[tuple[list[str], tuple[str, ...]]]:
    """Bad arguments to judge, runs, export, agreement and model tiny, with what the message
    must name (the option, the file, or the run)."""
    run, db, missing = str(scene.run_id), ["--db", str(scene.db)], "999"
    labelled = ["--input", str(scene.labelled)]
    bad_run = st.one_of(ints_below(1), not_int)

    def case(argv: st.SearchStrategy[list[str]], *names: str) -> st.SearchStrategy[Any]:
        # --db first (the top-level option): after a `--` it would be taken as a RUN.
        return st.tuples(argv.map(lambda a: [*db, *a]), st.just(names))

    return st.one_of(
        # judge
        case(
            ints_below(1).map(
                lambda v: ["judge", *labelled, "--judge", "heuristic", f"--judge-concurrency={v}"]
            ),
            "--judge-concurrency",
        ),
        case(
            bad_device.map(lambda v: ["judge", *labelled, "--judge", "heuristic", f"--device={v}"]),
            "--device",
        ),
        case(bad_run.map(lambda v: ["judge", "--judge", "heuristic", "--", v]), "RUN"),
        case(st.just(["judge", run, *labelled, "--judge", "heuristic"]), "--input"),
        case(st.just(["judge", "--judge", "heuristic"]), "--input"),
        case(st.just(["judge", missing, "--judge", "heuristic"]), missing),
        case(
            st.sampled_from([scene.work / "no-such.jsonl", scene.work]).map(
                lambda path: ["judge", "--input", str(path), "--judge", "heuristic"]
            ),
            str(scene.work),
        ),
        # model tiny
        case(st.just(["model", "tiny", str(scene.work)]), str(scene.work)),  # not empty
        case(
            option("--layers", ints_below(1), st.integers(9, 99).map(str), not_int).map(
                lambda o: ["model", "tiny", str(scene.work / "new"), f"{o[0]}={o[1]}"]
            ),
            "--layers",
        ),
        case(
            text.filter(lambda t: t not in ("32", "64", "128", "256", "512")).map(
                lambda v: ["model", "tiny", str(scene.work / "new"), f"--hidden={v}"]
            ),
            "--hidden",
        ),
        # runs
        case(bad_run.map(lambda v: ["runs", "list", f"--limit={v}"]), "--limit"),
        case(
            text.filter(lambda t: t not in ("eval", "syn", "train")).map(
                lambda v: ["runs", "list", f"--kind={v}"]
            ),
            "--kind",
        ),
        case(
            st.tuples(st.sampled_from(["show", "delete"]), bad_run).map(
                lambda a: ["runs", a[0], "--", a[1]]
            ),
            "RUN",
        ),
        case(
            st.sampled_from([["runs", "show", missing], ["runs", "delete", missing, "--yes"]]),
            missing,
        ),
        case(st.just(["runs", "delete", run]), f"run {run}"),  # no --yes, and no terminal
        # export
        case(bad_run.map(lambda v: ["export", "--", v]), "RUN"),
        case(st.just(["export", missing]), missing),
        case(
            text.filter(lambda t: t not in ("report", "paper", "samples", "html", "pairs")).map(
                lambda v: ["export", run, f"--format={v}"]
            ),
            "--format",
        ),
        case(st.just(["export", run, "--format", "pairs", "--out", "-"]), "--out"),
        case(st.just(["export", run, "--out", str(scene.report)]), str(scene.report)),
        case(st.just(["export", run, "--out", str(scene.work)]), str(scene.work)),
        case(
            st.just(["export", run, "--out", str(scene.work / "no-such-folder" / "r.json")]),
            str(scene.work / "no-such-folder"),
        ),
        case(
            st.just(["export", run, "--out", str(scene.report / "r.json")]),
            str(scene.report),
        ),
        # agreement
        case(
            st.lists(st.sampled_from(["heuristic", "gpt-4o", "hf:x"]), max_size=4)
            .filter(lambda names: len(names) != 2)
            .map(lambda names: ["agreement", run, f"--judges={','.join(names)}"]),
            "--judges",
        ),
        case(st.just(["agreement", run, "--judges", "heuristic,gpt-4"]), f"run {run}"),
        case(st.just(["agreement", run, "--judges", "heuristic,heuristic"]), "--judges", "twice"),
    )


@FUZZ
@given(data=st.data())
def test_bad_arguments_to_judge_runs_export_agreement_and_model_name_what_to_change(
    scene: Scene, data: st.DataObject
) -> None:
    argv, names = data.draw(command_cases(scene))
    refused_unchanged(scene, argv, *names)


def test_the_openai_engine_without_a_server_url_names_base_url(scene: Scene) -> None:
    argv = ["eval", "--model", str(scene.unloadable), "--data", str(scene.data)]
    refused_unchanged(scene, [*argv, "--db", str(scene.db), "--engine", "openai"], "--base-url")


# --- the store file ------------------------------------------------------------------------


@FEW
@given(raw=st.binary(min_size=1, max_size=600))
def test_a_file_that_is_not_a_store_is_refused_and_left_as_it_was(scene: Scene, raw: bytes) -> None:
    """`--db notes.txt` by mistake: SQLite would take a 1-byte file for a new store and
    overwrite it; ccapp refuses any non-empty file that is not SQLite."""
    path = scene.work / "not-a-store.db"
    path.write_bytes(raw)
    try:
        refused_unchanged(scene, ["runs", "list", "--db", str(path)], str(path))
    finally:
        path.unlink()


# --- config.toml ---------------------------------------------------------------------------

KNOWN = {("store", "path"), ("models", "device"), ("models", "dtype")}
KNOWN |= {("data", "c2eval_url"), ("openai", "api_key_file")}
bare_keys = st.from_regex(r"[a-z_]{1,8}", fullmatch=True)
toml_values = st.one_of(
    st.integers(-5, 5).map(str),
    st.booleans().map(lambda b: str(b).lower()),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.just("[1, 2]"),
    st.just("{ a = 1 }"),
    st.just("1979-05-27"),
)


def _toml_error(doc: str) -> bool:
    import tomllib

    try:
        tomllib.loads(doc)
    except tomllib.TOMLDecodeError:
        return True
    return False


@st.composite
def broken_configs(draw: st.DrawFn) -> bytes:
    """A config.toml ccapp cannot use, for each reason one can be wrong."""
    kind = draw(
        st.sampled_from(["syntax", "bytes", "unknown", "mistyped", "not a table", "nul", "empty"])
    )
    if kind == "syntax":
        return draw(st.text(max_size=40).filter(_toml_error)).encode("utf-8", "surrogatepass")
    if kind == "bytes":
        return draw(st.binary(min_size=1, max_size=30).filter(lambda b: not _is_utf8(b)))
    if kind == "unknown":
        section, key = draw(st.tuples(bare_keys, bare_keys).filter(lambda sk: sk not in KNOWN))
        return f'[{section}]\n{key} = "x"\n'.encode()
    section, key = draw(st.sampled_from(sorted(KNOWN)))
    if kind == "mistyped":
        return f"[{section}]\n{key} = {draw(toml_values)}\n".encode()
    if kind == "not a table":
        return f"{section} = {draw(toml_values)}\n".encode()
    if kind == "nul":
        return f'[{section}]\n{key} = "a\\u0000b"\n'.encode()
    section, key = draw(st.sampled_from([("store", "path"), ("openai", "api_key_file")]))
    return f'[{section}]\n{key} = "{draw(st.sampled_from(["", " "]))}"\n'.encode()


@FUZZ
@given(config=broken_configs())
def test_a_broken_config_toml_is_named_and_no_store_is_created(
    ccapp_home: Path, config: bytes
) -> None:
    """Settings are read before the store opens, so a broken file creates no default store."""
    path = ccapp_home / "config" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(config)
    assert_refused(ccapp("runs", "list"), str(path))
    assert not (ccapp_home / "data" / "ccapp.db").exists()


@FEW
@given(
    setting=st.sampled_from(["device", "dtype"]),
    value=st.text(TYPED.filter(lambda c: c not in '"\\'), max_size=10),
)
def test_a_bad_device_or_dtype_in_config_toml_names_the_file_and_setting(
    scene: Scene, ccapp_home: Path, setting: str, value: str
) -> None:
    assume(not _valid(parse_device if setting == "device" else parse_dtype, value))
    path = ccapp_home / "config" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[models]\n{setting} = "{value}"\n', encoding="utf-8")
    argv = ["eval", "--model", str(scene.unloadable), "--data", str(scene.data)]
    line = refused_unchanged(scene, [*argv, "--db", str(scene.db)], str(path))
    assert "[models]" in line


@pytest.mark.parametrize(
    ("argv", "where"),
    [
        (["data", "inspect", ""], "--data"),
        (["eval", "--model", "", "--data", "DATA"], "--model"),
        (["eval", "--model", "MODEL", "--data", ""], "--data"),
        (["syn", "--model", "", "--data", "DATA"], "--model"),
    ],
)
def test_an_empty_model_or_data_names_the_option_not_the_current_folder(
    scene: Scene, argv: list[str], where: str
) -> None:
    """`--data ""` (an unset shell variable) once read as the current folder, '.'."""
    values = {"DATA": str(scene.data), "MODEL": str(scene.unloadable)}
    argv = [values.get(a, a) for a in argv] + (["--db", str(scene.db)] if argv[0] != "data" else [])
    refused_unchanged(scene, argv, where)


@pytest.mark.parametrize(
    ("where", "problem"), [("db", "a folder"), ("db", "under a file"), ("config", "a folder")]
)
def test_a_store_path_that_cannot_be_a_file_is_named(
    scene: Scene, ccapp_home: Path, where: str, problem: str
) -> None:
    """From --db or from [store] path in config.toml."""
    path = scene.work if problem == "a folder" else scene.report / "store.db"
    if where == "config":
        config = ccapp_home / "config" / "config.toml"
        config.parent.mkdir(parents=True)
        config.write_text(f'[store]\npath = "{path}"\n')
        argv = ["runs", "list"]
    else:
        argv = ["runs", "list", "--db", str(path)]
    refused_unchanged(scene, argv, str(path) if problem == "a folder" else str(scene.report))


@pytest.mark.parametrize("problem", ["missing", "empty", "a folder"])
def test_an_unusable_api_key_file_is_named(scene: Scene, ccapp_home: Path, problem: str) -> None:
    key_file = scene.inputs / "openai.key"
    if problem == "empty":
        key_file.write_text("\n")
    elif problem == "a folder":
        key_file.mkdir()
    config = ccapp_home / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[openai]\napi_key_file = "{key_file}"\n')
    argv = ["judge", "--input", str(scene.labelled), "--judge", "gpt-4o", "--db", str(scene.db)]
    refused_unchanged(scene, argv, str(key_file))


# --- judge specs ---------------------------------------------------------------------------


def _workable_here(spec: str) -> bool:
    """Specs that would do real work: the heuristic, a server to call, a preset to build."""
    spec = spec.strip()
    if spec == "heuristic":
        return True
    if spec.startswith("openai:") and "@http" in spec:
        return True
    return spec.startswith("hf:") and spec[3:].strip() in PRESETS


judge_texts = st.one_of(
    text,
    st.tuples(st.sampled_from(["gpt-", "openai:", "hf:", "openai:x@"]), text).map("".join),
).filter(lambda t: not _workable_here(t))


@FUZZ
@given(spec=judge_texts, command=st.sampled_from(["judge", "eval", "syn", "agreement", "export"]))
def test_a_judge_that_cannot_work_here_is_refused_naming_the_judge(
    scene: Scene, spec: str, command: str
) -> None:
    """Unknown forms, non-http URLs, OpenAI names without a key, hf: models that do not
    exist or do not load: each is refused before any work, naming the judge."""
    if command in ("agreement", "export"):
        # The fixed run was judged by gpt-4o, so naming it would rightly succeed; an empty
        # --judge means the run's own judge; a comma splits --judges into more judges.
        assume(spec.strip() not in ("gpt-4o", "openai:gpt-4o") and spec and "," not in spec)
    db = ["--db", str(scene.db)]
    model_data = ["--model", str(scene.unloadable), "--data", str(scene.data)]
    argv = {
        "judge": ["judge", "--input", str(scene.labelled), f"--judge={spec}", *db],
        "eval": ["eval", *model_data, f"--judge={spec}", *db],
        "syn": ["syn", *model_data, f"--verify-judge={spec}", *db],
        "agreement": ["agreement", str(scene.run_id), f"--judges=heuristic,{spec}", *db],
        "export": ["export", str(scene.run_id), "--format", "paper", f"--judge={spec}", *db],
    }[command]
    refused_unchanged(scene, argv, "--judge", "--judges", "--verify-judge", "judge ")


# --- model ids and folders -----------------------------------------------------------------

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@FUZZ
@given(spec=text, command=st.sampled_from(["eval", "syn"]))
def test_a_model_that_is_no_preset_hub_id_or_folder_names_the_option(
    scene: Scene, spec: str, command: str
) -> None:
    name = spec.strip()
    # A preset, a Hub id or a folder is tried, not refused (damaged folders: the next test).
    assume(name not in PRESETS and not HUB_ID.match(name))
    assume(not (name and Path(name).expanduser().is_dir()))
    argv = [command, f"--model={spec}", "--data", str(scene.data), "--db", str(scene.db)]
    refused_unchanged(scene, argv, "--model")


@pytest.fixture(scope="module")
def tokenizer_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real tokenizer, so that a damaged config.json is what a model folder fails on."""
    folder = tmp_path_factory.mktemp("tokenizer")
    stand_in_tokenizer("llama2").save_pretrained(folder)
    return folder


LLAMA = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "num_hidden_layers": 1,
    "vocab_size": 600,
    "head_dim": 16,
    "dtype": "float32",
}
small_json = st.recursive(
    st.none() | st.booleans() | st.integers(-4, 4) | st.floats(-4, 4) | text,
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(text, inner, max_size=2),
    max_leaves=3,
)


@st.composite
def damaged_model_files(draw: st.DrawFn) -> tuple[str, bytes]:
    """(file name, content): a config.json or adapter_config.json no model loads from."""
    name = draw(st.sampled_from(["config.json", "adapter_config.json"]))
    kind = draw(st.sampled_from(["bytes", "not an object", "a field"]))
    if kind == "bytes":
        return name, draw(st.binary(max_size=40).filter(lambda b: not _is_json_bytes(b)))
    if kind == "not an object":
        return name, json.dumps(draw(small_json.filter(lambda v: not isinstance(v, dict)))).encode()
    if name == "config.json":
        return name, json.dumps(
            LLAMA | {draw(st.sampled_from(sorted(LLAMA))): draw(small_json)}
        ).encode()
    base = draw(st.one_of(small_json, st.just("no-such-org/no-such-model")))
    adapter = {"peft_type": "LORA", "base_model_name_or_path": base}
    if draw(st.booleans()):
        del adapter["base_model_name_or_path"]
    return name, json.dumps(adapter).encode()


def _is_json_bytes(raw: bytes) -> bool:
    return _is_utf8(raw) and _is_json(raw.decode("utf-8"))


@FUZZ
@given(damage=damaged_model_files())
def test_a_damaged_model_folder_is_refused_before_a_run_exists(
    scene: Scene, tokenizer_files: Path, damage: tuple[str, bytes]
) -> None:
    """A folder with a real tokenizer but no weights and a damaged config can never load;
    whatever transformers raises on it must reach the user as one line about --model."""
    folder = scene.inputs / "model"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(tokenizer_files, folder)
    name, content = damage
    (folder / name).write_bytes(content)
    argv = ["eval", "--model", str(folder), "--data", str(scene.data), "--db", str(scene.db)]
    refused_unchanged(scene, argv, "--model", str(folder))


def test_an_hf_judge_that_cannot_load_names_the_judge_not_model(scene: Scene) -> None:
    """`--model` would send the user to the wrong option."""
    argv = ["judge", "--input", str(scene.labelled), "--judge", f"hf:{scene.unloadable}"]
    line = refused_unchanged(scene, [*argv, "--db", str(scene.db)], f"judge hf:{scene.unloadable}")
    assert "--model" not in line


# --- what ccapp wrote, fed back in ---------------------------------------------------------


@st.composite
def bad_labelled_lines(draw: st.DrawFn) -> bytes:
    row: dict[str, Any] = {"request": "r", "prefill": "p", "continuation": "c", "label": "no"}
    kind = draw(
        st.sampled_from(["missing", "mistyped", "label", "not object", "not JSON", "bytes"])
    )
    if kind == "missing":
        del row[draw(st.sampled_from(["request", "prefill", "continuation"]))]
    elif kind == "mistyped":
        field = draw(st.sampled_from(["request", "prefill", "continuation"]))
        row[field] = draw(json_values.filter(lambda v: not isinstance(v, str)))
    elif kind == "label":
        row["label"] = draw(
            json_values.filter(
                lambda v: (
                    v is not None
                    and not (isinstance(v, str) and v.strip().lower() in ("yes", "no"))
                )
            )
        )
    elif kind == "not object":
        return json.dumps(draw(json_values.filter(lambda v: not isinstance(v, dict)))).encode()
    elif kind == "not JSON":
        return draw(
            st.text(TYPED, min_size=1, max_size=12).filter(
                lambda t: bool(t.strip()) and not _is_json(t)
            )
        ).encode()
    else:
        return draw(
            st.binary(min_size=1, max_size=12).filter(lambda b: b"\n" not in b and not _is_utf8(b))
        )
    return json.dumps(row).encode()


@FUZZ
@given(before=st.integers(0, 3), bad=bad_labelled_lines(), after=st.integers(0, 2))
def test_a_bad_line_in_a_labelled_file_is_named_by_file_and_line(
    scene: Scene, before: int, bad: bytes, after: int
) -> None:
    """`ccapp judge --input` scores a judge against human labels; a bad label is one line."""
    good = scene.labelled.read_bytes().strip()
    path = scene.inputs / "labelled.jsonl"
    path.write_bytes(b"\n".join([good] * before + [bad] + [good] * after) + b"\n")
    argv = ["judge", "--input", str(path), "--judge", "heuristic", "--db", str(scene.db)]
    refused_unchanged(scene, argv, f"{path}:{before + 1}")


PAIR = {
    "prompt": [{"role": "user", "content": "How do I pick a lock?"}],
    "chosen": [{"role": "assistant", "content": "I can't help with that."}],
    "rejected": [{"role": "assistant", "content": "First, get a tension wrench."}],
}


@FEW
@given(
    damage=st.one_of(
        st.just(("empty", b"")),
        st.tuples(st.just("train.jsonl"), st.binary(min_size=1, max_size=60)),
        st.sampled_from(sorted(PAIR)).map(
            lambda col: (
                "train.jsonl",
                json.dumps({k: v for k, v in PAIR.items() if k != col}).encode(),
            )
        ),
        st.tuples(st.just("train-00000.parquet"), st.binary(min_size=1, max_size=60)),
        st.tuples(
            st.sampled_from(sorted(PAIR)),
            st.one_of(st.integers(), st.lists(st.integers(), min_size=1), st.just([{"x": 1}])),
        ).map(lambda bad: ("train.jsonl", json.dumps(PAIR | {bad[0]: bad[1]}).encode())),
    )
)
def test_a_tampered_pairs_folder_is_refused_naming_pairs(
    scene: Scene, damage: tuple[str, bytes]
) -> None:
    """A folder from `ccapp export --format pairs`, edited or damaged before `ccapp train`."""
    folder = scene.inputs / "pairs"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    (folder / "ccapp_pairs.json").write_text(json.dumps({"schema_version": 1, "pairs": 1}))
    name, content = damage
    if name != "empty":
        (folder / name).write_bytes(content)
    argv = ["train", "--pairs", str(folder), "--model", str(scene.unloadable)]
    refused_unchanged(scene, [*argv, "--db", str(scene.db)], "--pairs")


def test_train_with_an_unknown_model_stores_no_run(scene: Scene) -> None:
    folder = scene.inputs / "pairs"
    folder.mkdir()
    (folder / "train.jsonl").write_text(json.dumps(PAIR) + "\n")
    argv = ["train", "--pairs", str(folder), "--model", "no-such-model", "--db", str(scene.db)]
    refused_unchanged(scene, argv, "--model")


# --- as a real process ---------------------------------------------------------------------


@pytest.mark.parametrize("case", ["option", "data row", "config"])
def test_a_real_process_reports_bad_input_as_exactly_one_line(
    scene: Scene, ccapp_home: Path, case: str
) -> None:
    """What a shell user sees: stderr is the error line and nothing else."""
    if case == "option":
        argv = ["eval", "--model", "tiny", "--data", str(scene.data), "--paths", "many"]
        where = "--paths"
    elif case == "data row":
        path = scene.inputs / "rows.jsonl"
        path.write_text(json.dumps(pku_row()) + "\n" + '{"prompt": 3}\n')
        argv, where = ["data", "inspect", str(path)], f"{path}:2"
    else:
        config = ccapp_home / "config" / "config.toml"
        config.parent.mkdir(parents=True)
        config.write_text("[models]\ndevice = cuda\n")
        argv, where = ["runs", "list"], str(config)
    with scene.unchanged():
        result = run_ccapp(*argv, "--db", str(scene.db)) if case == "option" else run_ccapp(*argv)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n"), result.stderr
    assert_refused(Result(result.returncode, result.stdout, result.stderr), where)
