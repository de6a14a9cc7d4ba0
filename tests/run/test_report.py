"""report.html from a small synthetic run folder: results first, code hidden, every saved figure embedded."""

from __future__ import annotations

import base64
import io
import json
import re

import matplotlib
import nbformat
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from compeffdist_utils.run.browser import BrowserError, check_page, find_chromium  # noqa: E402
from compeffdist_utils.run.report import build_report, cost_table  # noqa: E402


def _png(label: str) -> bytes:
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.set_title(label)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _notebook(path, code: str, png: bytes | None) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("params_path = 'x'")
    params.metadata["tags"] = ["parameters"]
    cell = nbformat.v4.new_code_cell(code)
    if png is not None:
        cell.outputs = [
            nbformat.v4.new_output("display_data", data={"image/png": base64.b64encode(png).decode()})
        ]
    nb.cells = [params, nbformat.v4.new_markdown_cell("Some **text**"), cell]
    nbformat.write(nb, path)


@pytest.fixture()
def run_dir(tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "eval").mkdir()
    shown = _png("map")
    (tmp_path / "figures" / "02_clustering_attribute_map.png").write_bytes(shown)
    (tmp_path / "figures" / "05_difficulty_selection_token_scores.png").write_bytes(_png("not shown inline"))
    _notebook(tmp_path / "notebooks" / "02_clustering.ipynb", "secret_code_line = 1", shown)
    (tmp_path / "eval" / "summary.csv").write_text(
        "row,group,student,distilled_student\nsc,basic,50.0,61.5\n"
    )
    manifest = {
        "run_name": "unit", "run_dir": str(tmp_path), "params_path": "params/x.yaml",
        "overrides": {"corpus.per_domain.imdb": 4}, "updated": "now",
        "machine": {"platform": "Linux-test", "cpu_count": 2, "python": "3.11", "cuda": None},
        "stages": [
            {"name": "01_attributes", "status": "ok", "seconds": 12.5, "notebook": "notebooks/missing.ipynb",
             "teacher_usage": {"requests": 24, "cache_hits": 4, "cache_misses": 20, "prompt_tokens": 900,
                               "completion_tokens": 400}},
            {"name": "02_clustering", "status": "ok", "seconds": 3.0, "notebook": "notebooks/02_clustering.ipynb"},
        ],
    }  # fmt: skip
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


def test_results_come_first_and_every_figure_is_embedded(run_dir):
    page = build_report(run_dir).read_text()
    card, results, notebooks = (
        page.index(s) for s in ("CompEffDist run <code>unit", "Attribute map", "Stage 02")
    )
    assert card < results < notebooks
    assert "params/x.yaml" in page and "corpus.per_domain.imdb=4" in page and "Linux-test" in page
    assert "24 (4 cached)" in page and str(run_dir) in page
    assert page.index("Models x datasets") < page.index("Cost") < notebooks
    assert "61.5" in page  # the models x datasets table
    for png in (run_dir / "figures").glob("*.png"):
        assert base64.b64encode(png.read_bytes()).decode() in page, f"{png.name} missing from the report"
    assert "Other saved figures" in page  # the one no notebook showed is added, not lost
    assert 'class="cdk-hide-code' in page and "secret_code_line" in page  # hidden by default, not dropped
    assert "params_path = 'x'" not in page  # the parameters cell is left out
    assert not re.search(r"<script[^>]*src=\"https?:", page)  # self-contained: no script from the network


def test_cost_table_totals_the_stages():
    manifest = {"stages": [
        {"name": "01", "seconds": 2.0, "teacher_usage": {"requests": 3, "cache_hits": 1, "cache_misses": 2,
                                                         "prompt_tokens": 30, "completion_tokens": 20}},
        {"name": "02", "seconds": 1.5, "teacher_usage": None},
    ]}  # fmt: skip
    df = cost_table(manifest)
    assert df.loc["total", "requests"] == 3 and df.loc["total", "seconds"] == 3.5
    assert df.loc["02", "generated tokens"] == 0


def test_report_renders_in_chromium_with_code_hidden(run_dir):
    if find_chromium() is None:
        pytest.skip(
            "NO CHROMIUM: install Debian's `chromium` (scripts/setup.sh does as root) to check the report"
        )
    report = build_report(run_dir)
    try:
        page = check_page(report, screenshot=run_dir / "report.png")
    except BrowserError as err:
        pytest.fail(f"Chromium is installed but could not render the report: {err}")
    assert page.images and not page.broken, page.broken
    assert len(page.images) == 2 + 1  # two saved figures, the one shown inline appears twice
    assert (run_dir / "report.png").read_bytes()[:4] == b"\x89PNG"
