"""Options are declared once per job (ccapp.engines.options), and the command line, the forms,
the resume check and the stored config are all read off that one declaration."""

from __future__ import annotations

import argparse
import dataclasses
import io
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from ccapp.cli import build_parser, main
from ccapp.cli.options import given
from ccapp.engines.c2eval.config import EvalConfig
from ccapp.engines.c2eval.evaluate import Evaluation
from ccapp.engines.c2syn.config import SynConfig
from ccapp.engines.dpo.config import TrainConfig
from ccapp.engines.options import (
    declared,
    declared_field,
    from_stored,
    job_config,
    option,
    refuse_other_settings,
)
from ccapp.errors import UserError
from ccapp.screens.eval_form import FormValues, eval_args
from ccapp.screens.syn import SynValues, syn_args
from ccapp.screens.train import TrainValues, train_args
from ccapp.store import RunKind, RunStatus, Store, runs

JOBS = {"eval": EvalConfig, "syn": SynConfig, "train": TrainConfig}
# Flags of the commands that are not settings of the job's config.
COMMAND_ONLY = {
    "-h",
    "--help",
    "--db",
    "--resume",
    "--events",
    "--json",
    "--launcher",
    "--accelerate-config",
    "--num-processes",
}


def subparser(command: str) -> argparse.ArgumentParser:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices[command]


def flags_of(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Each option flag of a parser and where argparse puts its value."""
    return {flag: a.dest for a in parser._actions for flag in a.option_strings}


def ccapp(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, err.getvalue()


# --- the command line is the declaration ------------------------------------------------------


@pytest.mark.parametrize("command", list(JOBS))
def test_each_declared_field_is_exactly_one_flag_and_each_flag_a_field(command: str) -> None:
    flags = flags_of(subparser(command))
    settings = {flag: dest for flag, dest in flags.items() if flag not in COMMAND_ONLY}
    declared_flags = {d.flag: d.name for d in declared(JOBS[command]) if d.flag}
    assert settings == declared_flags
    assert len(set(settings.values())) == len(settings)  # no field behind two flags


@pytest.mark.parametrize("command", list(JOBS))
def test_every_declared_field_says_what_it_is(command: str) -> None:
    for d in declared(JOBS[command]):
        assert d.option.help, f"{command}: {d.name} has no help"


def test_syn_takes_the_server_options_its_config_has() -> None:
    args = subparser("syn").parse_args(
        ["--concurrency", "3", "--request-timeout", "9.5", "--max-retries", "0"]
    )
    assert given(args, SynConfig) == {"concurrency": 3, "request_timeout": 9.5, "max_retries": 0}


def test_the_loading_options_are_one_declaration_shared_by_eval_and_syn() -> None:
    for name in ("engine", "device", "dtype", "base_url", "concurrency", "request_timeout"):
        assert declared_field(EvalConfig, name).option is declared_field(SynConfig, name).option


def test_stored_configs_keep_their_flat_keys() -> None:
    """A store written before the declarations resumes: the stored JSON has the same keys."""
    assert set(asdict(EvalConfig("m", "d"))) == {
        *("model", "data", "ks", "paths", "max_new_tokens", "temperature", "top_p", "top_k"),
        *("repetition_penalty", "seed", "limit", "unit", "judge", "engine", "device", "dtype"),
        *("load_in_4bit", "batch_size", "base_url", "served_model", "concurrency", "revision"),
        *("request_timeout", "max_retries", "judge_concurrency", "judge_max_tokens", "lenient"),
        "judge_batch",
    }
    assert set(asdict(SynConfig("m"))) == {
        *("model", "data", "from_run", "limit", "questions_only", "question_rule"),
        *("min_harmful_words", "safe_source", "completion", "max_new_tokens", "temperature"),
        *("top_p", "top_k", "repetition_penalty", "seed", "verify_judge", "engine", "device"),
        *("dtype", "load_in_4bit", "batch_size", "base_url", "served_model", "concurrency"),
        *("request_timeout", "max_retries", "lenient", "revision"),
    }
    stored = asdict(EvalConfig("m", "d", ks=(10, 40))) | {"ks": [10, 40], "model_source": "/m"}
    assert from_stored(EvalConfig, stored) == EvalConfig("m", "d", ks=(10, 40))


# --- a field added to a config reaches the command line and the form ------------------------


@job_config
class WiderEval(EvalConfig):
    knob: int = option(default=3, help="a setting added at test time", label="Knob", minimum=1)


class WiderValues(FormValues):
    config = WiderEval


def test_a_new_field_is_a_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    import ccapp.cli.eval_cmd as eval_cmd

    wider = dataclasses.replace(eval_cmd.COMMAND, config=WiderEval, new_config=None)
    monkeypatch.setattr(eval_cmd, "register", wider.register)
    parser = subparser("eval")
    assert flags_of(parser)["--knob"] == "knob"
    assert "(default 3)" in parser.format_help()
    args = parser.parse_args(["--model", "m", "--data", "d", "--knob", "7"])
    assert given(args, WiderEval) == {"model": "m", "data": "d", "knob": 7}
    code, err = ccapp("eval", "--model", "tiny", "--data", "c2-eval", "--knob", "0")
    assert code == 2 and "ccapp: error: --knob: invalid value 0. Fix: give at least 1" in err


def test_a_new_field_is_in_the_form_values_and_its_command() -> None:
    assert WiderValues().knob == "3"
    args, problems = eval_args(WiderValues(knob="7"))
    assert problems == {} and args[args.index("--knob") : args.index("--knob") + 2] == [
        "--knob",
        "7",
    ]
    _, problems = eval_args(WiderValues(knob="0"))
    assert problems == {"knob": "invalid value 0. Fix: give at least 1"}


async def test_a_new_field_gets_a_widget_in_the_form(tmp_path: Path) -> None:
    from textual.widgets import Input

    from ccapp.app import CcappApp
    from ccapp.engines.devices import Device
    from ccapp.screens.eval_form import EvalFormScreen

    async def cpu() -> list[Device]:
        return [Device("cpu", "cpu", "Test CPU", 2**34, 2**33, cores=2)]

    app = CcappApp(tmp_path / "s.db", probe_devices=cpu)
    async with app.run_test(size=(120, 80)) as pilot:
        await app.push_screen(EvalFormScreen(WiderValues()))
        await pilot.pause()
        assert app.screen.query_one("#knob", Input).value == "3"
        app.screen.query_one("#knob", Input).value = "0"
        await pilot.pause()
        assert isinstance(app.screen, EvalFormScreen)
        _, problems = app.screen.validate()
        assert problems == {"knob": "invalid value 0. Fix: give at least 1"}


# --- the command line and the form refuse the same values with the same words --------------

BASE: dict[str, dict[str, str]] = {
    "eval": {"model": "tiny", "data": "c2-eval"},
    "syn": {"model": "tiny", "data": "c2-eval"},
    "train": {"pairs": "3", "model": "tiny"},
}
FORMS: dict[str, Any] = {
    "eval": (FormValues, eval_args),
    "syn": (SynValues, syn_args),
    "train": (TrainValues, train_args),
}


@pytest.mark.parametrize(
    ("command", "field", "text"),
    [
        ("eval", "seed", "-1"),
        ("eval", "top_p", "1.5"),
        ("eval", "paths", "0"),
        ("eval", "temperature", "nan"),
        ("eval", "ks", "10,10"),
        ("syn", "max_new_tokens", "0"),
        ("syn", "min_harmful_words", "-2"),
        ("syn", "limit", "0"),
        ("train", "batch_size", "0"),
        ("train", "beta", "0"),
        ("train", "max_length", "8"),
    ],
)
def test_the_cli_and_the_form_refuse_a_value_with_the_same_message(
    command: str, field: str, text: str
) -> None:
    values_class, form_args = FORMS[command]
    _, problems = form_args(values_class(**BASE[command], **{field: text}))
    assert set(problems) == {field}
    flag = declared_field(JOBS[command], field).flag
    argv = [x for name, value in BASE[command].items() for x in (f"--{name}", value)]
    code, err = ccapp(command, *argv, f"{flag}={text}")
    assert code == 2
    assert err.strip().splitlines()[-1] == f"ccapp: error: {flag}: {problems[field]}"


@pytest.mark.parametrize(("command", "field"), [("eval", "seed"), ("train", "epochs")])
def test_text_that_is_no_number_reads_the_same_in_both(command: str, field: str) -> None:
    values_class, form_args = FORMS[command]
    _, problems = form_args(values_class(**BASE[command], **{field: "many"}))
    flag = declared_field(JOBS[command], field).flag
    argv = [x for name, value in BASE[command].items() for x in (f"--{name}", value)]
    code, err = ccapp(command, *argv, f"{flag}=many")
    assert code == 2 and f"argument {flag}: {problems[field]}" in err


def test_seed_below_zero_is_refused_by_the_engine_too() -> None:
    with pytest.raises(UserError, match="--seed"):
        EvalConfig("tiny", "c2-eval", seed=-1).check()


# --- resuming keeps the settings that decide the results ------------------------------------


def _paused_eval_run(db: Path) -> int:
    with Store.open(db) as store:
        stored = asdict(EvalConfig("tiny", "c2-eval", ks=(10,), paths=3)) | {"ks": [10]}
        run = runs.create_run(store, RunKind.EVAL, stored)
        runs.set_status(store, run.id, RunStatus.PAUSED)
        return run.id


def test_resuming_with_another_result_deciding_setting_is_refused(tmp_path: Path) -> None:
    run_id = _paused_eval_run(tmp_path / "s.db")
    with Store.open(tmp_path / "s.db") as store, pytest.raises(UserError) as info:
        Evaluation(store).resume(run_id, {"temperature": 0.2})
    assert "--temperature (run: 0.8, given: 0.2)" in info.value.message


def test_resuming_with_another_concurrency_is_not_refused(tmp_path: Path) -> None:
    run_id = _paused_eval_run(tmp_path / "s.db")
    with Store.open(tmp_path / "s.db") as store, pytest.raises(UserError) as info:
        Evaluation(store).resume(run_id, {"concurrency": 2, "paths": 3})
    # Past the settings check: this hand-made run has no planned prompts to resume.
    assert "nothing to resume" in info.value.message


@pytest.mark.parametrize(
    ("config", "deciding", "not_deciding"),
    [
        (SynConfig("m"), {"seed": 4}, {"concurrency": 2, "lenient": True}),
        (TrainConfig("1", "m"), {"beta": 0.5}, {"save_steps": 5, "device": "cpu"}),
    ],
)
def test_what_decides_results_is_declared(
    config: Any, deciding: dict[str, Any], not_deciding: dict[str, Any]
) -> None:
    refuse_other_settings(1, config, not_deciding, fix="-")
    with pytest.raises(UserError, match="was started with other settings"):
        refuse_other_settings(1, config, not_deciding | deciding, fix="-")


# --- a field's own check: the form as it is typed, the command line before any work -------


@pytest.mark.parametrize("job", ["eval", "syn", "train"])
def test_a_mistyped_model_is_refused_before_the_data_is_fetched(
    job: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """c2-eval is not cached here and the network is closed: the model is still the error
    reported, with its near preset, since it is checked before anything is read."""
    argv = {
        "eval": ["eval", "--model", "smolm2", "--data", "c2-eval"],
        "syn": ["syn", "--model", "smolm2", "--data", "c2-eval"],
        "train": ["train", "--model", "smolm2", "--pairs", "1"],
    }[job]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--model: not a preset: did you mean smollm2?" in err and "Fix: give a preset" in err
    assert "download" not in err


def test_the_form_shows_a_checks_reason_without_the_command_lines_fix() -> None:
    _, problems = eval_args(FormValues(model="smolm2"))
    assert problems["model"].startswith("not a preset: did you mean smollm2?")
    assert "Fix:" not in problems["model"]


def test_resuming_checks_only_the_model_given_again() -> None:
    """The stored model was checked when the run started; a resume reads no --model unless
    one is given."""
    stored = EvalConfig("smolm2", "c2-eval")
    with pytest.raises(UserError, match="did you mean smollm2"):
        stored.check()
    stored.check(given={"device": "cpu"})
    with pytest.raises(UserError, match="did you mean smollm2"):
        stored.check(given={"model": "smolm2"})
