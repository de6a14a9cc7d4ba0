"""The object a notebook opens first: params, run folder, teacher, and a record of what it wrote.

A notebook does ``stage = Stage.open("01_attributes", params_path, overrides, run_dir)``, calls the
package's helpers, registers the files it writes with :meth:`Stage.output` (or the figure/table
helpers) and ends with :meth:`Stage.finish`. The runner reads the record that ``finish`` writes to
fill ``manifest.json`` (outputs, teacher tokens) and to decide whether a stage can be skipped.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compeffdist_utils.core.config import Params, load_params
from compeffdist_utils.core.io import write_json
from compeffdist_utils.core.manifest import read_manifest, stage_record_path
from compeffdist_utils.core.progress import report_progress
from compeffdist_utils.stage.fingerprints import discover_stages, stage_fingerprints
from compeffdist_utils.teacher.backends import make_teacher
from compeffdist_utils.teacher.budget import TeacherBudget

if TYPE_CHECKING:
    import matplotlib.figure
    import pandas as pd

    from compeffdist_utils.teacher.base import TeacherBackend


class StaleInputError(RuntimeError):
    """An input whose producing stage's last run failed, or ran with other params or code."""


def find_project_root(start: Path | None = None) -> Path:
    """The folder holding ``params/`` and ``notebooks/``: notebooks run with cwd = notebooks/."""
    here = (start or Path.cwd()).resolve()
    for cand in (here, *here.parents):
        if (cand / "pyproject.toml").is_file() and (cand / "compeffdist_utils").is_dir():
            return cand
    return here


class Stage:
    def __init__(self, name: str, params: Params, run_dir: Path, params_path: Path | None = None):
        self.name = name
        self.params = params
        self.run_dir = run_dir
        self.params_path = params_path
        self.outputs: list[str] = []
        self.notes: dict[str, Any] = {}
        self._teacher: TeacherBackend | None = None
        self._t0 = time.time()
        run_dir.mkdir(parents=True, exist_ok=True)

    @classmethod
    def open(
        cls,
        name: str,
        params_path: str | Path,
        overrides: dict[str, Any] | None = None,
        run_dir: str | Path | None = None,
    ) -> Stage:
        root = find_project_root()
        p = Path(params_path)
        if not p.is_absolute() and not p.exists():
            p = root / p
        params = load_params(p, overrides)
        rd = Path(run_dir) if run_dir else params.run_dir(root)
        if not rd.is_absolute():
            rd = root / rd
        return cls(name, params, rd, p)

    # -- files ---------------------------------------------------------------------------------
    def path(self, rel: str) -> Path:
        """A path inside the run folder (parents created), e.g. an earlier stage's output."""
        out = self.run_dir / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        return out

    def output(self, rel: str) -> Path:
        """Like :meth:`path`, and records the file as this stage's output."""
        if rel not in self.outputs:
            self.outputs.append(rel)
        return self.path(rel)

    def require(self, rel: str, produced_by: str) -> Path:
        """An input from an earlier stage, with a clear error when that stage has not run."""
        p = self.run_dir / rel
        if not p.exists():
            raise FileNotFoundError(
                f"{self.name} needs {p}, written by stage {produced_by}; run it first "
                f"(compeffdist run <params> --stages {produced_by[:2]})"
            )
        problem = self._producer_problem(produced_by)
        if problem:
            raise StaleInputError(
                f"{self.name} will not read {p}: stage {produced_by} {problem}; rerun it first "
                f"(compeffdist run <params> --stages {produced_by[:2]})"
            )
        return p

    def _producer_problem(self, produced_by: str) -> str | None:
        """Why the producer's outputs are not this run's (its last run failed or differs), or None.

        Files written with no manifest entry (a notebook run by hand) are trusted: there is no record.
        """
        manifest = read_manifest(self.run_dir)
        entry = next((e for e in (manifest or {}).get("stages", []) if e["name"] == produced_by), None)
        if entry is None:
            return None
        if entry.get("status") not in ("ok", "skipped"):
            return f"ended {entry.get('status')!r} in its last run, so its files may be from an older run"

        expected = stage_fingerprints(discover_stages(find_project_root() / "notebooks"), self.params)
        if produced_by in expected and entry.get("fingerprint") != expected[produced_by]:
            return "last ran with other params, notebooks or inputs than this run's"
        return None

    def save_figure(self, fig: matplotlib.figure.Figure, name: str) -> Path:
        out = self.output(f"figures/{self.name}_{name}.png")
        fig.savefig(out, dpi=110, bbox_inches="tight")
        return out

    def show(self, fig: matplotlib.figure.Figure | None, name: str) -> Path | None:
        """Save ``fig`` as this stage's PNG ``name`` and show exactly that PNG inline, then close it.

        Displaying the saved bytes (not the live figure) makes the notebook output, the file in
        ``figures/`` and the report identical, whatever matplotlib backend the kernel runs; closing
        the figure stops the inline backend from drawing it a second time. ``None`` (a helper that had
        nothing to draw) shows nothing and saves nothing.
        """
        if fig is None:
            return None
        import matplotlib.pyplot as plt  # deferred: heavy, only when showing a figure
        from IPython.display import Image, display  # deferred: notebook-only, only when showing a figure

        out = self.save_figure(fig, name)
        plt.close(fig)
        display(Image(data=out.read_bytes(), format="png"))
        report_progress(f"figure {name}")
        return out

    def save_table(self, df: pd.DataFrame, name: str) -> Path:
        out = self.output(f"tables/{self.name}_{name}.csv")
        df.to_csv(out, index=True)
        return out

    # -- models --------------------------------------------------------------------------------
    def teacher(self) -> TeacherBackend:
        """The configured teacher, writing through the persistent response cache."""
        if self._teacher is None:
            self._teacher = make_teacher(self.params, stage=self.name)
            if self._teacher.cache.moved_aside is not None:  # said in the notebook too (a warning)
                self.notes["damaged_response_cache_moved_to"] = str(self._teacher.cache.moved_aside)
            self._teacher.budget = TeacherBudget.for_stage(self.params, self.run_dir, self.name)
        return self._teacher

    # -- bookkeeping ---------------------------------------------------------------------------
    def record_path(self) -> Path:
        return stage_record_path(self.run_dir, self.name)

    def finish(self, **notes: Any) -> dict[str, Any]:
        """Write the stage record (outputs, teacher usage, notes) that the runner and report read."""
        self.notes.update(notes)
        usage = self._teacher.usage.as_dict() if self._teacher is not None else None
        missing = [o for o in self.outputs if not (self.run_dir / o).exists()]
        if missing:
            raise RuntimeError(f"stage {self.name} registered outputs it did not write: {missing}")
        record = {
            "name": self.name,
            "outputs": self.outputs,
            "teacher_usage": usage,
            "notes": self.notes,
            "seconds_in_stage_object": round(time.time() - self._t0, 2),
        }
        write_json(self.record_path(), record)
        return record
