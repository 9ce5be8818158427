"""`ccapp plot`: the paper's figure — Corr@k against k, a line and a 95% band per run, with
labelled axes, a legend and the title asked for — as PNG, SVG or PDF; and the acceptance
run of `ccapp table` and `ccapp plot` on two real eval runs of the tiny model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_comparison import REQUESTS, add_eval_run

from ccapp.cli import main
from ccapp.engines.c2eval.figure import Curve, corr_at_k_figure, curve_from_metrics, figure_bytes
from ccapp.store import Store

BLUE, ORANGE = (0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)  # matplotlib's first two line colours


def _pixels_near(image: object, colour: tuple[int, int, int], tolerance: int = 40) -> int:
    rgb = image.convert("RGB")  # type: ignore[attr-defined]
    return sum(
        1
        for pixel in rgb.get_flattened_data()
        if all(abs(channel - want) <= tolerance for channel, want in zip(pixel, colour))
    )


def test_acceptance_table_and_plot_of_two_real_eval_runs(
    tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    from ccapp.engines.c2eval.evaluate import EvalConfig, Evaluation

    db = tmp_path / "s.db"
    with Store.open(db) as store:
        ids = [
            str(
                Evaluation(store)
                .start(
                    EvalConfig(
                        str(tiny_model_dir),
                        str(c2eval_file),
                        ks=(10, 20, 40),
                        paths=2,
                        limit=4,
                        seed=seed,
                        device="cpu",
                    )
                )
                .id
            )
            for seed in (1, 2)
        ]
    capsys.readouterr()
    assert main(["table", *ids, "--format", "latex", "--db", str(db)]) == 0
    latex = capsys.readouterr().out
    assert "\\begin{tabular}{lllcccc}" in latex and "\\bottomrule" in latex
    assert [line.split(" & ")[0] for line in latex.splitlines() if " & " in line][1:] == ids

    png = tmp_path / "f.png"
    title = "Tiny model: two seeds"
    assert main(["plot", *ids, "--out", str(png), "--title", title, "--db", str(db)]) == 0
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size == (960, 600)
        # both lines are drawn (the tiny model's may coincide: the legend shows each colour)
        assert _pixels_near(image, BLUE) > 100 and _pixels_near(image, ORANGE) > 100
    svg = tmp_path / "f.svg"
    assert main(["plot", *ids, "--out", str(svg), "--title", title, "--db", str(db)]) == 0
    text = svg.read_text()
    assert title in text
    assert all(f"run {run_id} · model" in text for run_id in ids)  # the legend, as text


def test_the_figure_has_a_line_and_band_per_run_labelled_axes_legend_and_title(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.db"
    with Store.open(db) as store:
        a = add_eval_run(store, REQUESTS, {i: i % 10 for i in range(40)}, ks=(10, 20, 40))
        b = add_eval_run(store, REQUESTS, {i: 9 for i in range(40)}, ks=(10, 20))
        from ccapp.engines.c2eval.figure import run_curves

        curves = run_curves(store, [a, b])
    assert curves[0] == Curve(f"run {a} · tiny", [10, 20, 40], [0.45] * 3, [0.36] * 3, [0.5425] * 3)
    figure = corr_at_k_figure(curves, title="Before and after")
    axes = figure.axes[0]
    assert [t.get_text() for t in axes.get_legend().get_texts()] == [c.label for c in curves]
    assert len(axes.lines) == 2 and len(axes.collections) == 2  # lines and their bands
    assert axes.get_title() == "Before and after"
    assert axes.get_xlabel() == "prefix length k" and axes.get_ylabel().startswith("Corr@k")
    assert list(axes.get_xticks()) == [10, 20, 40]
    assert axes.get_ylim()[0] >= -0.03 and axes.get_ylim()[1] <= 1.03
    assert figure_bytes(figure, "pdf").startswith(b"%PDF")
    assert figure_bytes(figure, "svg") == figure_bytes(figure, "svg")  # no date inside


def test_a_k_without_verdicts_is_a_gap_and_a_single_request_has_no_band() -> None:
    metrics = {
        "n": {"10": 5, "20": 0, "40": 5},
        "corr": {"10": 0.2, "40": 0.4},
        "ci95": {"10": [0.2, 0.2], "40": [0.1, 0.6]},
        "ci95_requests": {"10": 1, "20": 0, "40": 3},
    }
    curve = curve_from_metrics("run 7 · m", metrics)
    assert curve == Curve(
        "run 7 · m", [10, 20, 40], [0.2, None, 0.4], [None, None, 0.1], [None, None, 0.6]
    )
    line = corr_at_k_figure([curve]).axes[0].lines[0]
    assert list(line.get_ydata().mask) == [False, True, False]


def test_the_figure_file_is_checked_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "s.db"
    with Store.open(db) as store:
        a = add_eval_run(store, REQUESTS[:4], {i: 1 for i in range(4)})
    assert main(["plot", str(a), "--out", str(tmp_path / "f.jpg"), "--db", str(db)]) == 2
    assert "--out: cannot tell the figure's format from '.jpg'" in capsys.readouterr().err
    out = tmp_path / "f.png"
    out.write_bytes(b"keep")
    assert main(["plot", str(a), "--out", str(out), "--db", str(db)]) == 2
    assert "exists; nothing was written" in capsys.readouterr().err and out.read_bytes() == b"keep"
    assert main(["plot", str(a), "--out", str(out), "--db", str(db), "--force"]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")


def test_help_and_the_figure_module_do_not_import_matplotlib() -> None:
    probe = (
        "import sys\nfrom ccapp.cli import main\nimport ccapp.engines.c2eval.figure\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print([m for m in ('matplotlib', 'PIL', 'pandas') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
