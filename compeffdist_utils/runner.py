"""Runs the numbered notebooks in order with papermill and keeps ``manifest.json`` up to date.

A stage is skipped when its fingerprint (the notebook's text, the params sections it reads, and the
fingerprint of the stage before it, so upstream changes ripple down) equals the one recorded after its
last successful run and every output it listed still exists. A failing stage stops the run with its
name and error; what earlier stages wrote stays, and the manifest says which stage failed.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from .config import Params, load_params
from .io import read_json, write_json
from .stage import find_project_root, read_stage_record, stage_record_path

# The params sections each stage reads (by notebook number). A stage not listed depends on all params.
STAGE_SECTIONS: dict[str, list[str]] = {
    "00": ["corpus", "models"],
    "01": ["models.teacher", "attributes"],
    "02": ["models.embedder", "clustering"],
    "03": ["models.teacher", "models.embedder", "instructions"],
    "04": ["models.teacher", "distill_data"],
    "05": ["models.student", "models.dtype", "difficulty", "selection"],
    "06": ["models.student", "models.dtype", "training"],
    "07": ["models.student", "models.teacher", "models.dtype", "evaluation", "training.max_length"],
    "08": ["models.student", "models.dtype", "selection", "training", "evaluation", "efficiency"],
}
REPORTED_PACKAGES = (
    "torch", "transformers", "peft", "accelerate", "sentence-transformers", "scikit-learn", "umap-learn",
    "numpy", "pandas", "papermill", "openai", "compeffdist-kit",
)  # fmt: skip


class RunError(RuntimeError):
    """A stage failed; the message names it and its error."""


@dataclass
class StageInfo:
    name: str  # e.g. "01_attributes"
    notebook: Path

    @property
    def number(self) -> str:
        return self.name[:2]


def discover_stages(notebooks_dir: Path) -> list[StageInfo]:
    found = sorted(p for p in notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
    return [StageInfo(p.stem, p) for p in found]


def select_stages(stages: list[StageInfo], spec: str | None) -> list[StageInfo]:
    """``spec`` like ``"01,03"`` or ``"00-04"``; None = all. Unknown numbers are an error."""
    if not spec:
        return stages
    wanted: set[str] = set()
    for part in spec.split(","):
        part = part.strip()
        if "-" in part:
            lo, hi = (int(x) for x in part.split("-", 1))
            wanted.update(f"{i:02d}" for i in range(lo, hi + 1))
        elif part:
            wanted.add(f"{int(part):02d}")
    known = {s.number for s in stages}
    unknown = sorted(wanted - known)
    if unknown:
        raise RunError(f"unknown stage(s) {unknown}; stages are {sorted(known)}")
    return [s for s in stages if s.number in wanted]


def fingerprint(stage: StageInfo, params: Params, upstream: str) -> str:
    sections = STAGE_SECTIONS.get(stage.number)
    deps = {s: params.section_dump(s) for s in sections} if sections else params.model_dump(mode="json")
    blob = json.dumps(
        {"nb": hashlib.sha256(stage.notebook.read_bytes()).hexdigest(), "params": deps, "up": upstream},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def package_versions() -> dict[str, str]:
    out = {}
    for name in REPORTED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine_info() -> dict[str, Any]:
    import os

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    try:
        import torch

        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        info["cuda"] = None
    return info


def _teacher_totals(stages: list[dict[str, Any]]) -> dict[str, int]:
    tot = {"prompt_tokens": 0, "completion_tokens": 0, "cache_hits": 0, "cache_misses": 0}
    for st in stages:
        usage = st.get("teacher_usage") or {}
        for k in tot:
            tot[k] += int(usage.get(k, 0))
    return tot


class Runner:
    def __init__(
        self,
        params_path: str | Path,
        overrides: dict[str, Any] | None = None,
        run_dir: str | Path | None = None,
        root: Path | None = None,
    ):
        self.root = root or find_project_root()
        self.params_path = Path(params_path).resolve()
        self.overrides = overrides or {}
        self.params = load_params(self.params_path, self.overrides)
        self.run_dir = Path(run_dir).resolve() if run_dir else self.params.run_dir(self.root).resolve()
        self.stages = discover_stages(self.root / "notebooks")
        if not self.stages:
            raise RunError(f"no numbered notebooks in {self.root / 'notebooks'}")

    # -- manifest ------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.run_dir / "manifest.json"

    def _load_manifest(self) -> dict[str, Any]:
        if self.manifest_path.exists():
            return read_json(self.manifest_path)
        return {"stages": []}

    def _write_manifest(self, entries: dict[str, dict[str, Any]]) -> dict[str, Any]:
        stages = [entries[s.name] for s in self.stages if s.name in entries]
        manifest = {
            "run_name": self.params.run_name,
            "run_dir": str(self.run_dir),
            "params_path": str(self.params_path),
            "overrides": self.overrides,
            "params": self.params.model_dump(mode="json"),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": machine_info(),
            "packages": package_versions(),
            "teacher_tokens": _teacher_totals(stages),
            "stages": stages,
        }
        write_json(self.manifest_path, manifest)
        return manifest

    # -- running -------------------------------------------------------------------------------
    def _can_skip(self, prev: dict[str, Any] | None, fp: str) -> bool:
        if not prev or prev.get("status") not in ("ok", "skipped") or prev.get("fingerprint") != fp:
            return False
        return all((self.run_dir / o).exists() for o in prev.get("outputs", []))

    def run(self, stages: str | None = None, force: bool = False, progress: bool = True) -> dict[str, Any]:
        import papermill as pm

        chosen = {s.name for s in select_stages(self.stages, stages)}
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "notebooks").mkdir(exist_ok=True)
        entries = {e["name"]: e for e in self._load_manifest().get("stages", [])}
        upstream = ""
        failure: str | None = None
        for st in self.stages:
            fp = fingerprint(st, self.params, upstream)
            upstream = fp
            if st.name not in chosen:
                continue
            prev = entries.get(st.name)
            if not force and self._can_skip(prev, fp):
                assert prev is not None
                entries[st.name] = {**prev, "status": "skipped", "seconds": 0.0}
                print(f"[{st.name}] skipped (inputs and params unchanged, outputs present)")
                self._write_manifest(entries)
                continue
            print(f"[{st.name}] running ...", flush=True)
            record_file = stage_record_path(self.run_dir, st.name)
            record_file.unlink(missing_ok=True)
            out_nb = self.run_dir / "notebooks" / st.notebook.name
            t0 = time.time()
            entry: dict[str, Any] = {
                "name": st.name,
                "notebook": f"notebooks/{st.notebook.name}",
                "fingerprint": fp,
            }
            try:
                pm.execute_notebook(
                    str(st.notebook),
                    str(out_nb),
                    parameters={
                        "params_path": str(self.params_path),
                        "run_dir": str(self.run_dir),
                        "overrides": self.overrides,
                    },
                    cwd=str(st.notebook.parent),
                    kernel_name="python3",
                    progress_bar=progress,
                    report_mode=False,
                )
            except Exception as err:  # papermill wraps the cell's exception
                failure = _describe_failure(err)
                entry.update(status="failed", seconds=round(time.time() - t0, 2), outputs=[], error=failure)
            else:
                record = read_stage_record(self.run_dir, st.name) or {}
                entry.update(
                    status="ok",
                    seconds=round(time.time() - t0, 2),
                    outputs=[f"notebooks/{st.notebook.name}", *record.get("outputs", [])],
                    teacher_usage=record.get("teacher_usage"),
                    notes=record.get("notes", {}),
                )
                if not record:
                    entry.update(status="failed", error="the notebook did not call stage.finish()")
                    failure = entry["error"]
            entries[st.name] = entry
            print(f"[{st.name}] {entry['status']} in {entry['seconds']:.1f} s", flush=True)
            self._write_manifest(entries)  # after every stage: a killed run still shows what it did
            if failure:
                self.write_report()
                raise RunError(f"stage {st.name} failed: {failure}\n(executed notebook: {out_nb})")
        manifest = self._write_manifest(entries)
        self.write_report()
        return manifest

    def write_report(self) -> Path | None:
        from .report import build_report

        return build_report(self.run_dir)


def _describe_failure(err: Exception) -> str:
    ename = getattr(err, "ename", None)
    evalue = getattr(err, "evalue", None)
    if ename:
        return f"{ename}: {evalue}"
    return f"{type(err).__name__}: {err}"
