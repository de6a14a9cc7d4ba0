"""``compeffdist publish-study RUN_DIR --out docs/study``: the study as readers get it, from its run folder.

The folder holds ``results.csv`` and ``efficiency.csv`` (:mod:`.study_tables`), the data-efficiency figure
and the attribute map as PNG, the run's self-contained ``report.html`` and a generated ``README.md``
(:mod:`.study_readme`) naming the run, its params, machine and dates and which grid points exist. It reads
the run folder and writes nothing there, so it also publishes a study whose grid is still running (the
README then says the grid is partial). Stage 07 must have finished; stage 08 may be missing or partial.
The folder is written beside its place and renamed into it whole, replacing a folder this command wrote.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from compeffdist_utils.core.io import atomic_write_text
from compeffdist_utils.data_efficiency.plots import plot_efficiency_ci
from compeffdist_utils.data_efficiency.points import BASE
from compeffdist_utils.data_efficiency.results import RESULTS_FILE
from compeffdist_utils.export.export import into_place
from compeffdist_utils.export.run_files import ExportError, RunFolder, open_run
from compeffdist_utils.export.study_readme import GENERATED_MARK, readme_text
from compeffdist_utils.export.study_tables import (
    EFFICIENCY_COLUMNS,
    RESULTS_COLUMNS,
    GridTables,
    grid_tables,
    read_grid,
    stage07_results,
)
from compeffdist_utils.run.report import render_report

MAX_REPORT_BYTES = 10 * 1024 * 1024
ATTRIBUTE_MAP = "figures/02_clustering_attribute_map.png"
EFFICIENCY_FIGURE = "figures/08_data_efficiency_score_vs_budget_ci.png"
DIFFERENCES = "tables/07_evaluation_differences_ci.csv"
# A reference a page opened from disk can follow: in-page anchors, embedded data, links out.
_SELF_CONTAINED = re.compile(r"^(#|data:|https?:|mailto:|$)", re.I)
_REFERENCE = re.compile(r"""\b(src|href)\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.I)


@dataclass
class StudyDocs:
    """What was published and how each file was made (the README and the CLI say it)."""

    out: Path
    run_name: str
    partial: bool
    sources: dict[str, str] = field(default_factory=dict)  # file -> where it came from


def _newer_than(path: Path, *others: Path) -> bool:
    return path.is_file() and all(path.stat().st_mtime >= o.stat().st_mtime for o in others if o.exists())


def check_self_contained(page: str, name: str = "report.html") -> None:
    """Refuse a page over :data:`MAX_REPORT_BYTES`, or one that needs files beside it: a ``src`` must be
    embedded data, an ``href`` an in-page anchor, embedded data or a link out."""
    size = len(page.encode())
    if size > MAX_REPORT_BYTES:
        raise ExportError(
            f"{name} is {size / 2**20:.1f} MB, over the {MAX_REPORT_BYTES // 2**20} MB a study ships"
        )
    refs = [(attr.lower(), (dq or sq).strip()) for attr, dq, sq in _REFERENCE.findall(page)]
    outside = [
        ref
        for attr, ref in refs
        if not _SELF_CONTAINED.match(ref) or (attr == "src" and not ref.lower().startswith("data:"))
    ]
    if outside:
        raise ExportError(
            f"{name} is not self-contained: it refers to {len(outside)} file(s) outside it, e.g. {outside[:3]}"
        )


def report_page(run: RunFolder) -> tuple[str, str]:
    """(page, where it came from): the run's ``report.html`` when it is newer than the run's manifest and
    grid results, else the same report rendered now from the run folder (a run still going, or killed)."""
    own = run.path / "report.html"
    if _newer_than(own, run.path / "manifest.json", run.path / RESULTS_FILE):
        return own.read_text(encoding="utf-8"), "the run's own report.html"
    page = render_report(run.path)
    if page is None:
        raise ExportError(f"{run.path} has no manifest.json to report on")
    why = "missing" if not own.is_file() else "older than the run's manifest or grid results"
    return page, f"rendered now from the run folder (the run's report.html is {why})"


def _efficiency_figure(run: RunFolder, tables: GridTables, partial: bool, folder: Path) -> str | None:
    """The data-efficiency figure into ``folder``: the run's own PNG when stage 08 finished after its last
    result, else drawn now by notebook 08's plot from the same rows as ``efficiency.csv``."""
    target = folder / "data_efficiency.png"
    own = run.path / EFFICIENCY_FIGURE
    status = (run.stage_entry("08_data_efficiency") or {}).get("status", "not recorded")
    if partial:
        why = "the grid is partial"
    elif status not in ("ok", "skipped"):
        why = f"stage 08's last status is {status}"
    elif not _newer_than(own, run.path / RESULTS_FILE):
        why = f"the run's {EFFICIENCY_FIGURE} is missing or older than its results"
    else:
        shutil.copyfile(own, target)
        return f"the run's {EFFICIENCY_FIGURE}"
    unc = tables.uncertainty
    if unc is None or not (unc.table["selector"] != BASE).any():
        return None
    title = f"{run.run_name} (partial grid)" if partial else run.run_name
    fig = plot_efficiency_ci(unc.table, tables.frame, title=title)
    fig.savefig(target, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return f"drawn now by data_efficiency.plots.plot_efficiency_ci from these rows ({why})"


def _guard_out(out: Path) -> None:
    """Replace only a folder this command wrote (or an empty one): ``--out docs`` must not wipe docs/."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    readme = out / "README.md"
    if not (readme.is_file() and GENERATED_MARK in readme.read_text(encoding="utf-8", errors="replace")):
        raise ExportError(
            f"{out} exists and was not written by publish-study; choose another --out or remove it"
        )


def publish_study(
    run_dir: str | Path, out: str | Path, root: Path | None = None, sentibench_dir: str | None = None
) -> StudyDocs:
    """Read ``run_dir`` (stage 07 required, stage 08 as far as it got) and write the study into ``out``."""
    run = open_run(run_dir)
    out = Path(out).expanduser().resolve()
    _guard_out(out)
    stage07 = stage07_results(run)
    attribute_map = run.need(ATTRIBUTE_MAP)
    grid = read_grid(run, root, sentibench_dir)
    tables = grid_tables(run, grid)
    page, page_source = report_page(run)
    check_self_contained(page)
    docs = StudyDocs(out, run.run_name, grid.partial)

    results = pd.concat([f for f in (stage07, tables.results) if not f.empty], ignore_index=True)
    differences = pd.read_csv(run.need(DIFFERENCES)) if run.has(DIFFERENCES) else None

    def write(folder: Path) -> None:
        results[RESULTS_COLUMNS].to_csv(folder / "results.csv", index=False)
        tables.efficiency[EFFICIENCY_COLUMNS].to_csv(folder / "efficiency.csv", index=False)
        shutil.copyfile(attribute_map, folder / "attribute_map.png")
        atomic_write_text(folder / "report.html", page)
        docs.sources = {
            "results.csv": "tables/07_evaluation_scores_ci.csv (stage 07) and stage 08's point predictions",
            "efficiency.csv": "stage 08's efficiency/results.jsonl and point predictions",
            "attribute_map.png": f"the run's {ATTRIBUTE_MAP}",
            "report.html": page_source,
        }
        if (how := _efficiency_figure(run, tables, grid.partial, folder)) is not None:
            docs.sources["data_efficiency.png"] = how
        readme = readme_text(run, grid, tables, docs.sources, results, differences)
        atomic_write_text(folder / "README.md", readme)

    into_place(out, True, write)
    return docs
