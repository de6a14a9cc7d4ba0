"""One self-contained HTML report per run: a summary of the manifest, then every executed notebook.

The executed notebooks are joined into one notebook (a heading cell before each stage) and rendered by
nbconvert with images embedded, so the report is a single file that can be mailed or archived.
"""

from __future__ import annotations

import html
from pathlib import Path

import nbformat

from .io import atomic_write_text, read_json


def _summary_markdown(manifest: dict) -> str:
    rows = ["| stage | status | seconds | outputs |", "|---|---|---:|---:|"]
    for st in manifest.get("stages", []):
        status = st["status"] + (f" — {html.escape(st['error'][:200])}" if st.get("error") else "")
        rows.append(
            f"| {st['name']} | {status} | {st.get('seconds', 0):.1f} | {len(st.get('outputs', []))} |"
        )
    tok = manifest.get("teacher_tokens", {})
    machine = manifest.get("machine", {})
    return "\n".join(
        [
            f"# CompEffDist run `{manifest.get('run_name')}`",
            f"Params: `{manifest.get('params_path')}` · updated {manifest.get('updated')} · "
            f"machine: {machine.get('platform')}, {machine.get('cpu_count')} CPUs, GPU: {machine.get('cuda')}",
            "",
            f"Teacher cost this run: {tok.get('completion_tokens', 0)} generated tokens, "
            f"{tok.get('prompt_tokens', 0)} prompt tokens; {tok.get('cache_hits', 0)} answers came from the "
            f"cache, {tok.get('cache_misses', 0)} were generated.",
            "",
            *rows,
        ]
    )


def _cost_section(run_dir: Path) -> str:
    """Planned vs actual cost and what filtering saved; a table that cannot be built is named, not fatal."""
    from .plan_report import cost_markdown

    try:
        return cost_markdown(run_dir)
    except Exception as err:  # the report must still be written
        return f"## Cost\nThe cost tables could not be built: {html.escape(f'{type(err).__name__}: {err}'[:300])}"


def build_report(run_dir: Path) -> Path | None:
    """Write ``report.html`` in the run folder from the manifest and executed notebooks."""
    from nbconvert import HTMLExporter

    manifest_path = run_dir / "manifest.json"
    if not manifest_path.exists():
        return None
    manifest = read_json(manifest_path)
    joined = nbformat.v4.new_notebook()
    joined.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                       "language_info": {"name": "python"}}  # fmt: skip
    joined.cells.append(nbformat.v4.new_markdown_cell(_summary_markdown(manifest)))
    costs = _cost_section(run_dir)
    if costs:
        joined.cells.append(nbformat.v4.new_markdown_cell(costs))
    for st in manifest.get("stages", []):
        nb_path = run_dir / st.get("notebook", "")
        if not nb_path.is_file():
            continue
        nb = nbformat.read(nb_path, as_version=4)
        joined.cells.append(nbformat.v4.new_markdown_cell(f"---\n# Stage {st['name']} ({st['status']})"))
        for cell in nb.cells:
            if "parameters" in cell.get("metadata", {}).get("tags", []) or "injected-parameters" in cell.get(
                "metadata", {}
            ).get("tags", []):
                continue
            joined.cells.append(cell)
    body, _ = HTMLExporter(embed_images=True).from_notebook_node(joined)
    return atomic_write_text(run_dir / "report.html", body)
