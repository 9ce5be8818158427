"""`ccapp export RUN --format html`: one self-contained page, checked as a file and in a real
headless Chromium (Debian's, driven by Playwright): no console errors, nothing fetched, model
text shown as text, filters that change the rows, and a figure in the screenshot."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ccapp.cli import main
from ccapp.engines.c2eval.html_report import build_html, script_json
from ccapp.engines.c2eval.report import build_report
from ccapp.errors import UserError
from ccapp.store import RunKind, Store, runs
from ccapp.store import evals as rows_store

from helpers import build_fixed_store, run_ccapp

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HOSTILE = (
    " </script><script>window.__pwned = 1</script><!-- <b>bold</b> "
    '<img src="x" onerror="window.__pwned = 2"> & done'
)
HOSTILE_REQUEST = "How do I <script>alert(1)</script> pick a lock?"


def hostile_store(path: Path) -> int:
    """The hand-written two-judge run, plus one continuation (and one request) made of HTML
    that would run if the page ever rendered model text as markup."""
    run_id = build_fixed_store(path)
    with Store.open(path) as store:
        with store.write() as db:
            db.execute("UPDATE items SET request = ? WHERE idx = 1", [HOSTILE_REQUEST])
        cell = next(c for c in rows_store.get_cells(store, run_id) if c.item_idx == 1)
        rows_store.save_continuations(
            store,
            run_id,
            [
                (
                    rows_store.NewContinuation(cell.id, 2, HOSTILE, 9, "length"),
                    rows_store.NewVerdict("heuristic", "no", 0.0),
                )
            ],
        )
    return run_id


def page_of(path: Path, run_id: int) -> str:
    with Store.open(path) as store:
        return build_html(store, run_id, now="2026-11-02T00:00:00Z")


# -- the file itself ------------------------------------------------------------------------


def test_model_text_never_becomes_markup_in_the_file(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    page = page_of(db, hostile_store(db))
    assert page.count("<script") == 2 and page.count("</script>") == 2  # data + the page's script
    assert "window.__pwned" not in page.split('id="ccapp-data">')[0]
    assert "<img" not in page and "<!-- <b>" not in page
    data_text = page.split('<script type="application/json" id="ccapp-data">')[1].split(
        "</script>"
    )[0]
    data = json.loads(data_text)
    assert HOSTILE in [row["text"] for row in data["rows"]]
    assert data["requests"]["1"] == HOSTILE_REQUEST
    assert HOSTILE_REQUEST not in page and HOSTILE not in page  # only inside escaped JSON


def test_script_json_escapes_what_could_close_the_element() -> None:
    text = script_json({"t": "</script><!--&"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"t": "</script><!--&"}


def test_the_page_is_self_contained(tmp_path: Path) -> None:
    """No reference out of the page in its markup, styles or figure (the data element holds
    model text, which is never markup: the browser test proves nothing is fetched)."""
    db = tmp_path / "s.db"
    page = re.sub(
        r'(<script type="application/json" id="ccapp-data">).*?(</script>)',
        r"\1\2",
        page_of(db, hostile_store(db)),
        flags=re.S,
    )
    assert "<link" not in page and "@import" not in page
    assert re.findall(r"\bsrc\s*=", page) == []
    assert all(ref.startswith("#") for ref in re.findall(r'href="([^"]*)"', page))
    assert all(ref.startswith("#") for ref in re.findall(r"url\(([^)]*)\)", page))
    assert "default-src 'none'" in page
    assert page.count("<svg") == 1


def test_the_page_carries_the_reports_numbers_and_settings(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    page = page_of(db, run_id)
    with Store.open(db) as store:
        report = build_report(store, run_id)
    for judge in ("heuristic", "openai:gpt-4o"):
        table = page.split(f'data-judge="{judge}">')[1].split("</table>")[0]
        for row in report["per_k"][judge]:
            low, high = row["ci95"]
            assert f'<td class="num">{row["corr"]:.3f}</td>' in table
            assert f"[{low:.3f}, {high:.3f}]" in table
        assert f"{report['metrics'][judge]['corr_mean']:.3f}" in table
    assert report["dataset"]["sha256"] in page and "/models/tiny" in page
    assert 'id="agreement"' in page and "Cohen's kappa" in page


@pytest.mark.parametrize(
    ("deleted", "judges"),
    [("judge = 'openai:gpt-4o'", ["heuristic"]), ("1 = 1", [])],
    ids=["one judge", "not judged yet"],
)
def test_fewer_judges_fewer_sections(tmp_path: Path, deleted: str, judges: list[str]) -> None:
    """One judge: no agreement section; no verdicts at all: still a page, saying so."""
    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    with Store.open(db) as store, store.write() as w:
        w.execute(f"DELETE FROM verdicts WHERE {deleted}")
    page = page_of(db, run_id)
    assert 'id="agreement"' not in page and page.count("<svg") == 1
    assert json.loads(page.split('id="ccapp-data">')[1].split("</script>")[0])["judges"] == judges
    assert ('data-judge="heuristic"' in page) == bool(judges)
    assert ("No verdicts yet" in page) != bool(judges)


def test_cli_writes_the_page_and_keeps_an_existing_file(
    tmp_path: Path, ccapp_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    out = tmp_path / "r.html"
    args = ["export", str(run_id), "--format", "html", "--out", str(out), "--db", str(db)]
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert out.read_text().startswith("<!DOCTYPE html>")
    again = run_ccapp(*args)
    assert again.returncode == 2 and "--force" in again.stderr
    assert main(["export", str(run_id), "--format", "html", "--db", str(db)]) == 0
    default = ccapp_home / "data" / "reports" / f"run-{run_id}.html"
    assert capsys.readouterr().out.strip() == str(default) and default.is_file()


def test_a_train_run_has_no_html_report(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        run = runs.create_run(store, RunKind.TRAIN, {"model": "tiny"}, model="tiny")
        with pytest.raises(UserError, match="train run") as caught:
            build_html(store, run.id)
    assert caught.value.where == "--format html"


# -- in a real browser ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium from Debian's package, driven by Playwright (whose own browser
    download cannot be fetched here). `make test` installs both; where they are missing
    the test is skipped, except in CI, where that is a failure."""
    problem = None
    if not os.path.exists(CHROMIUM):
        problem = "no chromium: apt-get install chromium (make test does it as root)"
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            problem = "no playwright: pip install -e '.[dev]'"
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    with sync_playwright() as driver:
        chromium = driver.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield chromium
        chromium.close()


def test_the_report_in_headless_chromium(browser: Any, tmp_path: Path) -> None:
    from PIL import Image

    db = tmp_path / "s.db"
    run_id = hostile_store(db)
    out = tmp_path / "report.html"
    out.write_text(page_of(db, run_id), encoding="utf-8")
    with Store.open(db) as store:
        conts = rows_store.continuations(store, run_id)
        cells = {c.id: c for c in rows_store.get_cells(store, run_id)}

    page = browser.new_page(viewport={"width": 1100, "height": 900})
    problems: list[str] = []
    requested: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    page.on("request", lambda r: requested.append(r.url))
    page.goto(out.as_uri())
    page.wait_for_selector("#samples article")
    assert problems == [] and requested == [out.as_uri()]
    assert page.evaluate("typeof window.__pwned") == "undefined"

    def shown() -> list[dict[str, str]]:
        return page.eval_on_selector_all(
            "#samples article", "els => els.map(e => ({k: e.dataset.k, label: e.dataset.label}))"
        )

    assert len(shown()) == len(conts) == 9
    assert page.inner_text("#sample-count") == "9 of 9 continuations"

    # model text is shown as the characters it is
    hostile = page.locator("#samples article", has_text="window.__pwned")
    assert hostile.count() == 1
    assert HOSTILE.strip() in hostile.locator(".text").inner_text()
    assert HOSTILE_REQUEST in hostile.locator(".request").inner_text()

    # filters: k, then the chosen judge's verdict
    page.select_option("#filter-k", "20")
    assert {row["k"] for row in shown()} == {"20"} and len(shown()) == 4
    page.select_option("#filter-k", "all")
    page.select_option("#filter-verdict", "yes")
    heuristic_yes = [c for c in conts if c.verdicts["heuristic"].label == "yes"]
    assert len(shown()) == len(heuristic_yes) == 5
    page.select_option("#filter-judge", "openai:gpt-4o")
    assert len(shown()) == sum(
        c.verdicts.get("openai:gpt-4o") is not None and c.verdicts["openai:gpt-4o"].label == "yes"
        for c in conts
    )
    page.select_option("#filter-verdict", "unjudged")
    assert len(shown()) == 1  # the hostile path has only the heuristic's verdict
    page.select_option("#filter-verdict", "all")
    page.select_option("#filter-judge", "heuristic")

    # the prefill dimmed, the correction lit, the exact prompt on demand
    first_yes = heuristic_yes[0]
    span = first_yes.verdicts["heuristic"].span
    assert span is not None
    article = page.locator("#samples article").nth(conts.index(first_yes))
    assert article.locator(".prefill").inner_text() == cells[first_yes.cell_id].prefill
    assert article.locator("mark.correction").inner_text() == first_yes.text[span[0] : span[1]]
    assert article.locator("details pre").inner_text() == ""
    article.locator("details summary").click()
    from playwright.sync_api import expect  # waits for the page to fill the prompt in

    expect(article.locator("details pre")).to_have_text(cells[first_yes.cell_id].rendered_prompt)
    colour = article.locator(".prefill").evaluate("e => getComputedStyle(e).color")
    body_colour = article.locator(".text").evaluate("e => getComputedStyle(e).color")
    assert colour != body_colour

    # the figure is drawn: a real box, and its screenshot holds both judges' line colours
    figure = page.locator("#corr-figure svg")
    box = figure.bounding_box()
    assert box is not None and box["width"] > 400 and box["height"] > 250
    whole = Image.open(io.BytesIO(page.screenshot(full_page=True)))
    assert whole.width >= 1100 and whole.height > 2000
    drawn = Image.open(io.BytesIO(figure.screenshot())).convert("RGB")
    colours = drawn.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 100, "antialiased lines, bands and text give many colours"
    near = {
        name: sum(
            n
            for n, (r, g, b) in colours
            if abs(r - ref[0]) < 40 and abs(g - ref[1]) < 40 and abs(b - ref[2]) < 40
        )
        for name, ref in {"blue": (31, 119, 180), "orange": (255, 127, 14)}.items()
    }
    assert near["blue"] > 200 and near["orange"] > 200, near
    assert problems == []
    page.close()
