"""A finished run folder as the export reads it: its manifest, its params, and each stage's files, with an
error naming the stage and the file when one is missing or its stage did not finish.

The export only reads: it never reruns a stage, so what is shared is exactly what the run made.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from compeffdist_utils.core.config import Params, ParamsError, params_from_dict
from compeffdist_utils.core.io import DataFileError, read_json, read_jsonl
from compeffdist_utils.core.manifest import MANIFEST, read_manifest

# Every file the export reads, with the stage that writes it (docs/ARCHITECTURE.md, Data flow).
STAGE_OF = {
    "corpus/texts.jsonl": "00_environment_and_corpus",
    "clusters/clusters.jsonl": "02_clustering",
    "figures/02_clustering_attribute_map.png": "02_clustering",
    "distill/dataset.jsonl": "04_distillation_data",
    "distill/heldout.jsonl": "04_distillation_data",
    "difficulty/scores.jsonl": "05_difficulty_selection",
    "selection/selected.jsonl": "05_difficulty_selection",
    "selection/summary.json": "05_difficulty_selection",
    "student/model": "06_student_training",
    "student/summary.json": "06_student_training",
    "eval/results.csv": "07_evaluation",
    "eval/summary.csv": "07_evaluation",
    "tables/07_evaluation_scores_ci.csv": "07_evaluation",
    "tables/07_evaluation_differences_ci.csv": "07_evaluation",
    "efficiency/results.jsonl": "08_data_efficiency",
}


class ExportError(ValueError):
    """A run folder that cannot be exported; the message names the stage and the file, and the fix."""


@dataclass
class RunFolder:
    """A run folder opened for export: where it is, its manifest and the params it ran with."""

    path: Path
    manifest: dict[str, Any]
    params: Params

    def stage_entry(self, stage: str) -> dict[str, Any] | None:
        return next((s for s in self.manifest.get("stages", []) if s.get("name") == stage), None)

    def need(self, rel: str) -> Path:
        """``rel`` inside the run folder, or an :class:`ExportError` naming its stage and how to make it."""
        stage = STAGE_OF[rel]
        path = self.path / rel
        entry = self.stage_entry(stage)
        fix = f"run `compeffdist run {self.manifest.get('params_path', 'PARAMS')} --stages {stage[:2]}` first"
        if entry is not None and entry.get("status") not in ("ok", "skipped"):
            raise ExportError(
                f"{self.path} cannot be exported: stage {stage} ended {entry.get('status')!r} in its last "
                f"run, so {rel} may be stale or missing; {fix}"
            )
        if not path.exists():
            raise ExportError(f"{self.path} lacks {rel}, which stage {stage} writes; {fix}")
        return path

    def has(self, rel: str) -> bool:
        """Whether an optional file is there from a finished stage (stage 08's grid, say)."""
        entry = self.stage_entry(STAGE_OF[rel])
        ok = entry is None or entry.get("status") in ("ok", "skipped")
        return ok and (self.path / rel).exists()

    def jsonl(self, rel: str) -> list[dict[str, Any]]:
        return _parsed(self.need(rel), read_jsonl)

    def json(self, rel: str) -> Any:
        return _parsed(self.need(rel), read_json)

    @property
    def run_name(self) -> str:
        return str(self.manifest.get("run_name") or self.params.run_name)


def _parsed(path: Path, reader: Any) -> Any:
    try:
        return reader(path)
    except (DataFileError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ExportError(f"{path} does not parse: {err}") from None


def open_run(run_dir: str | Path) -> RunFolder:
    """The run folder at ``run_dir``, or an error saying why it is not one this kit wrote."""
    path = Path(run_dir).expanduser().resolve()
    if not path.is_dir():
        raise ExportError(f"run folder not found: {path}")
    try:
        manifest = read_manifest(path)
    except DataFileError as err:
        raise ExportError(str(err)) from None
    if manifest is None or not isinstance(manifest.get("params"), dict):
        raise ExportError(
            f"{path} is not a run folder: no {MANIFEST} with the run's params "
            "(`compeffdist run PARAMS` writes it; point the export at reports/<run_name>/)"
        )
    try:
        params = params_from_dict(manifest["params"], source=f"{path / MANIFEST}")
    except ParamsError as err:
        raise ExportError(
            f"the params recorded in {path / MANIFEST} do not load with this kit: {err}"
        ) from None
    return RunFolder(path, manifest, params)


def params_hash(params: Params) -> str:
    """A short hash of every resolved param, so a shared dataset or model names the exact settings."""
    blob = json.dumps(params.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def kit_version(run: RunFolder) -> str:
    """The kit version the run recorded (its manifest), else the installed one."""
    recorded = (run.manifest.get("packages") or {}).get("compeffdist-kit")
    if recorded and recorded != "not installed":
        return str(recorded)
    try:
        return metadata.version("compeffdist-kit")
    except metadata.PackageNotFoundError:
        return "unknown"
