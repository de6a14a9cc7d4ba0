"""The interactive path: `make lab`'s JupyterLab, notebook 02 opened in Debian's headless Chromium and run
with JupyterLab's own "Run All" through the server's kernel (not papermill). The cluster explorer must be
a live ipywidget (choosing another cluster redraws its table through the kernel), not the static
fallback, and the figures must be displayed. A screenshot is kept.

Notebook 02 needs stages 00-01: they come from the session's CI pipeline run (`ci_run`), copied into a
throw-away project that looks like a user's checkout after `make run`: the notebooks, the package, and
`params/tiny.yaml` (the notebook's default) holding tests/params/ci.yaml with the CI run's cache, so the
embeddings and the 2-D map come from the cache. Its clustering asks for two clusters, so that there is
another cluster to choose.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from compeffdist_utils.core.io import read_jsonl
from compeffdist_utils.run.browser import open_page
from compeffdist_utils.run.lab import free_port, lab_command, running_lab
from tests.ci_run import ROOT

NOTEBOOK = "notebooks/02_clustering.ipynb"
SCREENSHOT = ROOT / "reports" / "lab_02_clustering.png"  # kept for people to look at (reports/ is ignored)
FALLBACK = "headless run: the interactive explorer is skipped"

# The open notebook's code cells as JSON (execution count, output types and mime types), and the kernel state.
CELLS_JS = """(() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.content || !panel.sessionContext) return null;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = panel.content.widgets.filter(c => c.model.type === 'code').map(c => {
    const j = c.model.toJSON();
    return {count: j.execution_count, outputs: (j.outputs || []).map(o => ({type: o.output_type,
      mimes: Object.keys(o.data || {}), error: o.ename ? o.ename + ': ' + o.evalue : null}))};
  });
  return JSON.stringify({status: kernel ? kernel.status : null, cells});
})()"""
# What the page shows of the explorer: the dropdown's options and the table in its output area.
EXPLORER_JS = """(() => {
  const select = document.querySelector('.jp-OutputArea-output .widget-dropdown select');
  if (!select) return null;
  const table = select.closest('.widget-vbox').querySelector('.widget-output table');
  return JSON.stringify({options: [...select.options].map(o => o.textContent), value: select.value,
                         table: table ? table.innerText : null});
})()"""
IMAGES_JS = """JSON.stringify([...document.querySelectorAll('.jp-OutputArea-output img')]
  .map(i => ({complete: i.complete, width: i.naturalWidth})))"""


def _lab_project(tmp: Path, ci_run: tuple) -> Path:
    """A checkout-like folder whose reports/ci/ holds the CI run's stages 00-01 (manifest included)."""
    run_dir, cache_dir, _ = ci_run
    project = tmp / "project"
    shutil.copytree(ROOT / "notebooks", project / "notebooks")
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    (project / "compeffdist_utils").symlink_to(ROOT / "compeffdist_utils")  # found by find_project_root
    params = yaml.safe_load((ROOT / "tests/params/ci.yaml").read_text())
    params |= {"cache_dir": str(cache_dir), "reports_dir": str(project / "reports"), "run_name": "ci"}
    params["clustering"] = {**params["clustering"], "target_clusters": 2}
    (project / "params").mkdir()
    (project / "params/tiny.yaml").write_text(yaml.safe_dump(params))
    target = project / "reports" / "ci"
    for sub in ("corpus", "attributes"):
        shutil.copytree(run_dir / sub, target / sub)
    shutil.copy(run_dir / "manifest.json", target / "manifest.json")
    return project


def _lab_settings(tmp: Path) -> dict[str, str]:
    """Throw-away JupyterLab user settings and workspaces (no news prompt over the page)."""
    settings = tmp / "lab-settings"
    note = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    note.parent.mkdir(parents=True)
    note.write_text(json.dumps({"fetchNews": "false"}))
    return {
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "lab-workspaces"),
    }


def _run_all(page) -> list[dict]:
    """JupyterLab's Run All on the open notebook; the code cells once every one has run (or one failed)."""
    page.wait_for(f"(() => {{ const s = {CELLS_JS}; return s && JSON.parse(s).status === 'idle'; }})()",
                  180, "notebook 02 open with its kernel idle")  # fmt: skip
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')", await_promise=True)
    done = f"""(() => {{ const s = JSON.parse({CELLS_JS});
      const failed = s.cells.some(c => c.outputs.some(o => o.type === 'error'));
      return (failed || (s.status === 'idle' && s.cells.every(c => c.count !== null))) && JSON.stringify(s);
    }})()"""
    cells = json.loads(page.wait_for(done, 420, "every cell of notebook 02 run"))["cells"]
    errors = [o["error"] for c in cells for o in c["outputs"] if o["type"] == "error"]
    assert not errors, f"notebook 02 failed in JupyterLab: {errors}"
    return cells


def _cells(table: str) -> set[str]:
    """The body cells of a table's innerText (rows by newline, cells by tab, the header row left out)."""
    return {cell.strip() for row in table.split("\n")[1:] for cell in row.split("\t")}


def _explorer_showing(page, cluster: dict) -> dict:
    """What the explorer shows once its table lists ``cluster``'s attributes (every one of them)."""
    names = json.dumps([a["attr"] for a in cluster["attributes"]])
    shown = f"""(() => {{ const s = {EXPLORER_JS}; if (!s) return null; const e = JSON.parse(s);
      return e.table && {names}.every(n => e.table.includes(n)) && s; }})()"""
    seen = json.loads(page.wait_for(shown, 60, f"the explorer's table of cluster {cluster['cluster_id']}"))
    assert {a["attr"] for a in cluster["attributes"]} <= _cells(seen["table"]), seen
    return seen


def test_lab_command_serves_the_project_with_the_kits_python():
    cmd = lab_command(ROOT, 8899)
    assert cmd[:3] == [sys.executable, "-m", "jupyterlab"]
    assert f"--ServerApp.root_dir={ROOT}" in cmd and "--ServerApp.port=8899" in cmd
    assert not any("token" in part.lower() for part in cmd)  # the token travels in $JUPYTER_TOKEN only


@pytest.mark.slow
def test_make_lab_prints_port_and_a_fresh_token_and_stops_with_its_server(tmp_path):
    """`make lab`'s command: the printed token opens the server's API, no token is refused, a kill stops it."""
    port = free_port(8890)
    proc = subprocess.Popen(
        [sys.executable, "-m", "compeffdist_utils.run.lab", "--port", str(port), "--root", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, **_lab_settings(tmp_path)},
    )  # fmt: skip
    try:
        printed = ""
        while not printed.endswith("Ctrl-C stops it.\n"):  # or the end of its output, if it failed
            line = proc.stdout.readline()
            if not line:
                pytest.fail(f"make lab ended before serving: {printed}")
            printed += line
        token = re.search(r"token: (\S+)", printed).group(1)
        assert f"port:  {port}" in printed and len(token) >= 24 and f"{sys.executable}" in printed
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=10) as r:
            assert r.status == 200
        with pytest.raises(urllib.error.HTTPError, match="403"):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=10)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "JupyterLab outlived `make lab`"


@pytest.mark.slow
@pytest.mark.pipeline
def test_notebook_02_runs_in_jupyterlab_with_a_live_cluster_explorer(ci_run, chromium, tmp_path):
    project = _lab_project(tmp_path, ci_run)
    env = _lab_settings(tmp_path)
    with running_lab(project, expose_app=True, log_path=tmp_path / "lab.log", env=env) as lab:
        with open_page(width=1400, height=1000, binary=chromium) as page:
            page.navigate(lab.url(f"lab/tree/{NOTEBOOK}"))
            cells = _run_all(page)
            widget_views = [o for c in cells for o in c["outputs"]
                            if "application/vnd.jupyter.widget-view+json" in o["mimes"]]  # fmt: skip
            assert widget_views, "the explorer cell displayed no widget"
            clusters = read_jsonl(project / "reports/ci/clusters/clusters.jsonl")  # written by this run
            seen = _explorer_showing(page, clusters[0])
            assert len(seen["options"]) == len(clusters) >= 2, (seen, len(clusters))
            assert FALLBACK not in page.evaluate("document.body.innerText")

            # Live: choosing cluster 1 reaches the kernel, whose callback redraws the table.
            page.evaluate("""(() => { const s = document.querySelector('.widget-dropdown select');
                s.selectedIndex = 1; s.dispatchEvent(new Event('change', {bubbles: true})); })()""")
            seen = _explorer_showing(page, clusters[1])
            assert not _cells(seen["table"]) & {a["attr"] for a in clusters[0]["attributes"]}, seen

            images = json.loads(page.evaluate(IMAGES_JS))
            figures = sorted((project / "reports/ci/figures").glob("02_clustering_*.png"))
            assert figures and len(images) >= len(figures), (images, figures)
            assert all(i["complete"] and i["width"] > 0 for i in images), images

            page.evaluate("window.jupyterapp.shell.collapseLeft()")
            page.evaluate("""document.querySelector('.widget-dropdown select').closest('.jp-Cell')
                               .scrollIntoView({block: 'center'})""")  # fmt: skip
            shot = page.screenshot(tmp_path / "lab_02_clustering.png")
    assert shot.read_bytes()[:4] == b"\x89PNG"
    SCREENSHOT.parent.mkdir(exist_ok=True)
    shutil.copy(shot, SCREENSHOT)
    assert (project / "reports/ci/.stages/02_clustering.json").is_file()  # the stage finished in the kernel
