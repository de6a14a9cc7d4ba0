"""The run folder's bookkeeping files: ``manifest.json`` (the runner's per-stage record of a run) and the
per-stage records a notebook's ``stage.finish`` writes for the runner to read.

Below the stage contract, the teacher's budget and the runner, which all read or write them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from compeffdist_utils.core.io import DataFileError, read_json

if TYPE_CHECKING:
    pass


STAGE_RECORDS = ".stages"


MANIFEST = "manifest.json"


def stage_record_path(run_dir: Path, name: str) -> Path:
    """Where a stage's record lives: written by :meth:`Stage.finish`, read and cleared by the runner."""
    return run_dir / STAGE_RECORDS / f"{name}.json"


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    """The run folder's manifest, None when there is none, or an error naming the file and the fix."""
    path = run_dir / MANIFEST
    if not path.exists():
        return None
    data = read_json(path)
    stages = data.get("stages") if isinstance(data, dict) else None
    if not isinstance(stages, list) or not all(
        isinstance(e, dict) and isinstance(e.get("name"), str) for e in stages
    ):
        raise DataFileError(
            f"{path} is not a manifest this kit wrote (expected an object whose 'stages' is a list of "
            "{name, status, ...} records); move it aside and rerun: the runner writes a new one"
        )
    return data


def read_stage_record(run_dir: Path, name: str) -> dict[str, Any] | None:
    p = stage_record_path(run_dir, name)
    return read_json(p) if p.exists() else None
