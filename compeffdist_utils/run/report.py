"""One self-contained HTML report per run, results first.

Top: the run card (params, overrides, machine, per-stage status, wall time and teacher use, where the
run folder is). Then the headline results, each a figure or table from the run folder with one sentence
saying what it shows. Then every stage's executed notebook with its code hidden (a button shows it).
Images are embedded as data URIs and external scripts are left out, so the file opens from disk and can
be mailed or archived. A figure in ``figures/`` that no notebook shows is added at the end, so the
report never silently lacks one.

A headline is any :data:`Section`: a function of (run folder, manifest) returning HTML, or None when
its inputs are missing. New results plug in by appending to :data:`HEADLINES`.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd

from compeffdist_utils.core.io import atomic_write_text, read_json
from compeffdist_utils.planning.report import cost_table as planned
from compeffdist_utils.planning.report import filtering_savings, table_html

Section = Callable[[Path, dict[str, Any]], str | None]

_CSS = """
.cdk-card, .cdk-headline { max-width: 1150px; margin: 0 auto 1.2em auto; font-family: system-ui, sans-serif; }
.cdk-card h1 { margin-bottom: 0.2em; }
.cdk-card table, .cdk-headline table { border-collapse: collapse; font-size: 13px; margin: 0.4em 0; }
.cdk-card td, .cdk-card th, .cdk-headline td, .cdk-headline th { border: 1px solid #ccc; padding: 2px 8px; }
.cdk-card th, .cdk-headline th { background: #f3f3f3; }
.cdk-headline img { max-width: 100%; max-height: 460px; border: 1px solid #eee; margin-right: 6px; }
.cdk-headline .cdk-what { color: #333; margin: 0.2em 0 0.5em 0; }
.cdk-missing { color: #888; font-style: italic; }
.cdk-failed { color: #b00; font-weight: bold; }
.cdk-stage-title { border-top: 3px solid #555; padding-top: 0.4em; margin-top: 2em; }
body.cdk-hide-code .jp-CodeCell .jp-Cell-inputWrapper { display: none; }
#cdk-toggle-code { position: sticky; top: 4px; z-index: 10; font-size: 13px; }
"""
_TOGGLE = (
    '<button id="cdk-toggle-code" onclick="document.body.classList.toggle(\'cdk-hide-code\')">'
    "show / hide the code of the notebooks</button>"
)
COST_COLUMNS = ["seconds", "requests", "cache hits", "generated", "prompt tokens", "generated tokens"]


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def _table(df: pd.DataFrame) -> str:
    return df.to_html(border=0, na_rep="", float_format=lambda v: f"{v:.2f}")


def _section(anchor: str, title: str, sentence: str, body: str) -> str:
    return (
        f'<section class="cdk-headline" id="{anchor}"><h3>{html.escape(title)}</h3>'
        f'<p class="cdk-what">{html.escape(sentence)}</p>{body}</section>'
    )


def figure_section(title: str, sentence: str, *figures: str) -> Section:
    """A headline of saved figures (``figures/<name>``); None when none of them exists."""

    def render(run_dir: Path, manifest: dict[str, Any]) -> str | None:
        found = [run_dir / "figures" / f for f in figures if (run_dir / "figures" / f).is_file()]
        if not found:
            return None
        return _section(Path(figures[0]).stem, title, sentence, "".join(_img(p) for p in found))

    return render


def _results_table(run_dir: Path, manifest: dict[str, Any]) -> str | None:
    summary = run_dir / "eval" / "summary.csv"
    if not summary.is_file():
        return None
    df = pd.read_csv(summary, index_col=0).rename_axis(None)
    note = " Scores are the FALLBACK on held-out corpus texts, not SentiBench." if _fallback(manifest) else ""
    sentence = (
        "Every evaluated model (columns) on every benchmark dataset, its group means and the overall mean "
        f"(scores x100, mean over demo seeds): the distilled student should beat the base student.{note}"
    )
    fig = run_dir / "figures" / "07_evaluation_scores.png"
    body = _table(df) + (_img(fig) if fig.is_file() else "")
    for name, what in CI_TABLES:
        table = run_dir / "tables" / f"07_evaluation_{name}.csv"
        if table.is_file():
            body += f'<p class="cdk-what">{html.escape(what)}</p>' + _table(
                pd.read_csv(table, index_col=0).rename_axis(None)
            )
    return _section("results", "Models x datasets", sentence, body)


CI_TABLES = (
    ("scores_ci", "Each score with its 95% bootstrap confidence interval over the test examples."),
    (
        "differences_ci",
        "Paired differences against the reference model, with 95% CIs: significant when the CI excludes 0.",
    ),
)


def _fallback(manifest: dict[str, Any]) -> bool:
    return any(st.get("notes", {}).get("fallback") for st in manifest.get("stages", []))


def cost_table(manifest: dict[str, Any]) -> pd.DataFrame:
    """What each stage cost in this run: wall seconds and teacher requests/tokens (from the manifest)."""
    rows = {}
    for st in manifest.get("stages", []):
        u = st.get("teacher_usage") or {}
        rows[st["name"]] = [
            float(st.get("seconds", 0.0)), int(u.get("requests", 0)), int(u.get("cache_hits", 0)),
            int(u.get("cache_misses", 0)), int(u.get("prompt_tokens", 0)), int(u.get("completion_tokens", 0)),
        ]  # fmt: skip
    df = pd.DataFrame.from_dict(rows, orient="index", columns=COST_COLUMNS)
    if len(df):
        df.loc["total"] = df.sum()
    return df.astype({c: int for c in COST_COLUMNS[1:]})


def _cost_section(run_dir: Path, manifest: dict[str, Any]) -> str | None:
    df = cost_table(manifest)
    if df.empty:
        return None
    sentence = (
        "What this run cost per stage: wall seconds, and the teacher's requests, how many came from the "
        "response cache, and the prompt and generated tokens of the ones it had to generate (a skipped stage "
        "costs 0 s)."
    )
    return _section("cost", "Cost", sentence, _table(df))


def _plan_table(
    anchor: str, title: str, sentence: str, build: Callable[[Path], pd.DataFrame | None]
) -> Section:
    """A headline from a :mod:`plan_report` table; one that cannot be built is named, never fatal."""

    def render(run_dir: Path, manifest: dict[str, Any]) -> str | None:

        try:
            df = build(run_dir)
        except Exception as err:  # the report must still be written
            problem = html.escape(f"{type(err).__name__}: {err}"[:300])
            return _section(anchor, title, sentence, f'<p class="cdk-failed">not built: {problem}</p>')
        return None if df is None else _section(anchor, title, sentence, table_html(df))

    return render


def _planned_vs_actual(run_dir: Path) -> pd.DataFrame | None:

    return planned(run_dir)


def _filtering_savings(run_dir: Path) -> pd.DataFrame | None:

    return filtering_savings(run_dir)


HEADLINES: list[Section] = [
    figure_section(
        "Attribute map",
        "Each point is an attribute name the teacher produced, placed by its embedding and coloured by the "
        "analytical perspective (cluster) it joined; the most frequent names are labelled.",
        "02_clustering_attribute_map.png",
    ),
    figure_section(
        "Score distributions",
        "How hard the scoring model finds each distillation sample, by the rank score and the baselines "
        "(IFD, perplexity, length); selection keeps the hard end.",
        "05_difficulty_selection_score_distributions.png",
    ),
    figure_section(
        "Selection composition",
        "The share of each task type and cluster in the pool and in the budgeted selection: stratified "
        "selection keeps every perspective's share.",
        "05_difficulty_selection_composition.png",
    ),
    figure_section(
        "Learning curves",
        "The student's train and held-out loss on the teacher's outputs: both falling means it learns; "
        "eval loss rising while train loss falls means it memorises.",
        "06_student_training_learning_curves.png",
    ),
    _results_table,
    figure_section(
        "Data efficiency",
        "Benchmark score against the share of distillation data kept, per selector (left), and what each "
        "point cost to train (right): the paper's claim is that hard selection reaches the full-data score "
        "with about 10% of the data.",
        "08_data_efficiency_score_vs_budget.png",
        "08_data_efficiency_score_vs_budget_ci.png",
    ),
    _cost_section,
    _plan_table(
        "plan",
        "Cost: planned vs actual",
        "What `compeffdist plan` expected before the run and just before each stage, beside what the stage "
        "used; teacher tokens include answers read from the cache.",
        _planned_vs_actual,
    ),
    _plan_table(
        "savings",
        "What difficulty filtering saved",
        "Training tokens per epoch of the selected subset against the full pool, at each budget of the "
        "efficiency grid.",
        _filtering_savings,
    ),
]


def run_card(run_dir: Path, manifest: dict[str, Any]) -> str:
    """The top of the report: what ran where, with which params, how long, and what the teacher did."""
    machine = manifest.get("machine", {})
    rows = []
    for st in manifest.get("stages", []):
        u = st.get("teacher_usage") or {}
        status = html.escape(st["status"])
        if st.get("error"):
            status = f'<span class="cdk-failed">{status}: {html.escape(st["error"][:300])}</span>'
        teacher = f"{u.get('requests', 0)} ({u.get('cache_hits', 0)} cached)" if u else ""
        if u.get("failed"):  # rejected requests: answered empty, not cached (under max_failed_fraction)
            teacher += f' <span class="cdk-failed">{int(u["failed"])} failed</span>'
        tokens = f"{u.get('prompt_tokens', 0)} / {u.get('completion_tokens', 0)}" if u else ""
        seconds = f"{st.get('seconds', 0):.1f}"
        if st.get("ran_in_seconds") is not None:
            seconds += f" (ran in {st['ran_in_seconds']:.1f})"
        rows.append(
            f"<tr><td><a href='#stage-{st['name']}'>{html.escape(st['name'])}</a></td><td>{status}</td>"
            f"<td style='text-align:right'>{seconds}</td><td>{teacher}</td><td>{tokens}</td></tr>"
        )
    wall = sum(float(st.get("seconds", 0)) for st in manifest.get("stages", []))
    overrides = manifest.get("overrides") or {}
    sets = ", ".join(f"<code>{html.escape(f'{k}={v}')}</code>" for k, v in overrides.items()) or "none"
    gpu = machine.get("cuda") or "none"
    return (
        f'<header class="cdk-card"><h1>CompEffDist run <code>{html.escape(str(manifest.get("run_name")))}</code></h1>'
        f"<p>Params <code>{html.escape(str(manifest.get('params_path')))}</code> · overrides {sets}<br>"
        f"Machine: {html.escape(str(machine.get('platform')))}, {machine.get('cpu_count')} CPUs, "
        f"Python {html.escape(str(machine.get('python')))}, GPU: {html.escape(str(gpu))}<br>"
        f"Run folder: <code>{html.escape(str(manifest.get('run_dir', run_dir)))}</code> · updated "
        f"{html.escape(str(manifest.get('updated')))} · wall time of the stages run now: {wall:.0f} s</p>"
        "<table><tr><th>stage</th><th>status</th><th>seconds</th><th>teacher requests</th>"
        f"<th>prompt / generated tokens</th></tr>{''.join(rows)}</table></header>"
    )


def _joined_notebooks(run_dir: Path, manifest: dict[str, Any]) -> tuple[nbformat.NotebookNode, set[str]]:
    """Every executed notebook in stage order, a heading before each; and the PNGs their outputs show."""
    joined = nbformat.v4.new_notebook()
    joined.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                       "language_info": {"name": "python"}}  # fmt: skip
    shown: set[str] = set()
    for st in manifest.get("stages", []):
        nb_path = run_dir / st.get("notebook", "")
        if not nb_path.is_file():
            continue
        nb = nbformat.read(nb_path, as_version=4)
        title = html.escape(f"Stage {st['name']} ({st['status']})")
        joined.cells.append(
            nbformat.v4.new_markdown_cell(f'<h1 class="cdk-stage-title" id="stage-{st["name"]}">{title}</h1>')
        )
        for cell in nb.cells:
            tags = cell.get("metadata", {}).get("tags", [])
            if "parameters" in tags or "injected-parameters" in tags:
                continue
            for out in cell.get("outputs", []):
                png = out.get("data", {}).get("image/png")
                if png:
                    shown.add(re.sub(r"\s", "", png))
            joined.cells.append(cell)
    return joined, shown


def _unshown_figures(run_dir: Path, shown: set[str]) -> str:
    """Saved figures that no executed notebook shows (e.g. a stage run outside the runner)."""
    left = [
        p
        for p in sorted((run_dir / "figures").glob("*.png"))
        if base64.b64encode(p.read_bytes()).decode() not in shown
    ]
    if not left:
        return ""
    sentence = "Figures the stages saved that no executed notebook shows inline."
    return _section("other-figures", "Other saved figures", sentence, "".join(_img(p) for p in left))


def build_report(run_dir: Path) -> Path | None:
    """Write ``report.html`` in the run folder from the manifest, the run's files and executed notebooks."""
    page = render_report(run_dir)
    return None if page is None else atomic_write_text(run_dir / "report.html", page)


def render_report(run_dir: Path) -> str | None:
    """The report page of ``run_dir`` as it is now (None without a manifest); writes nothing, so a run
    folder can be reported on while its lock is held (``compeffdist publish-study`` on a running grid)."""
    from nbconvert import HTMLExporter  # deferred: heavy, only when rendering notebooks

    manifest_path = run_dir / "manifest.json"
    if not manifest_path.exists():
        return None
    manifest = read_json(manifest_path)
    joined, shown = _joined_notebooks(run_dir, manifest)
    page, _ = HTMLExporter(embed_images=True).from_notebook_node(joined)
    # Self-contained: the page needs no script from the network (require.js, MathJax).
    page = re.sub(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>", "", page)
    page = page.replace("</head>", f"<style>{_CSS}</style></head>", 1)
    title = f"<title>CompEffDist run {html.escape(str(manifest.get('run_name')))}</title>"
    page = re.sub(r"<title>.*?</title>", lambda _: title, page, count=1, flags=re.S)
    page = page.replace('<body class="', '<body class="cdk-hide-code ', 1)
    headlines = "".join(s for s in (section(run_dir, manifest) for section in HEADLINES) if s)
    top = (
        run_card(run_dir, manifest)
        + '<div class="cdk-card"><h2>Results</h2></div>'
        + headlines
        + _unshown_figures(run_dir, shown)
        + f'<div class="cdk-card"><h2>The stages, notebook by notebook</h2>{_TOGGLE}</div>'
    )
    return page.replace("<main>", "<main>" + top, 1)
