"""A toy project for the runner's tests: a params file and two one-cell stage notebooks.

The runner finds a project by its notebooks/ and pyproject.toml; these tests give it stages whose code they
control (fail on a value, wait on a file, fill the disk) so its bookkeeping can be checked in seconds.
"""

import shutil
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]


def write_notebook(path: Path, code: str) -> None:
    """A papermill-ready notebook: the `parameters` cell the runner injects into, then ``code``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}}  # fmt: skip
    params = nbformat.v4.new_code_cell('params_path = "x"\nrun_dir = None\noverrides = {}')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(code)]
    nbformat.write(nb, path)


def make_project(root: Path, stages: dict[str, str]) -> Path:
    """A project under ``root`` with tests/params/ci.yaml as params/p.yaml and one notebook per stage."""
    (root / "notebooks").mkdir()
    (root / "compeffdist_utils").mkdir()
    (root / "pyproject.toml").write_text("")
    (root / "params").mkdir()
    shutil.copy(ROOT / "tests/params/ci.yaml", root / "params/p.yaml")
    for name, code in stages.items():
        write_notebook(root / f"notebooks/{name}.ipynb", code)
    return root
