"""Runs the numbered notebooks in order with papermill and keeps ``manifest.json`` up to date.

A stage is skipped when its fingerprint (the notebook's text, the params sections it reads, the hash of
the package code it imports (:func:`code_hash.stage_code_hash`), and the fingerprint of the stage
before it, so upstream changes ripple down) equals the one recorded after its
last successful run and every output it listed still exists. A failing stage stops the run with its
name and error; what earlier stages wrote stays, and the manifest says which stage failed.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from compeffdist_utils.core.config import load_params
from compeffdist_utils.core.io import write_json
from compeffdist_utils.core.machine import machine_info, package_versions
from compeffdist_utils.core.manifest import read_manifest, read_stage_record, stage_record_path
from compeffdist_utils.core.progress import PROGRESS_ENV, ProgressTail
from compeffdist_utils.core.redaction import env_secrets, redact
from compeffdist_utils.models import check_model_specs
from compeffdist_utils.planning.plan import make_plan
from compeffdist_utils.run.browser import screenshot_report
from compeffdist_utils.run.interrupts import (
    DiskReserve,
    interrupt_name,
    is_disk_full,
    sigterm_as_interrupt,
)
from compeffdist_utils.run.kernel_log import logged_kernel_manager
from compeffdist_utils.run.report import build_report
from compeffdist_utils.run.runlock import run_lock
from compeffdist_utils.stage.fingerprints import StageInfo, discover_stages, stage_fingerprints
from compeffdist_utils.stage.stage import find_project_root
from compeffdist_utils.teacher.budget import budget_stop_path, read_budget_stop

PROGRESS_DIR = ".progress"  # per stage, the progress events its kernel wrote (see progress.py)


class RunError(RuntimeError):
    """A stage failed; the message names it and its error."""


class BudgetStop(RunError):
    """A teacher stage stopped at ``params.budget``; the message gives the numbers and how to continue."""


class RunInterrupted(RunError):
    """Ctrl-C or SIGTERM stopped a stage; it is recorded as ``interrupted`` and the run can resume."""


def select_stages(stages: list[StageInfo], spec: str | None) -> list[StageInfo]:
    """``spec`` like ``"01,03"`` or ``"00-04"``; None = all. Unknown numbers are an error."""
    if not spec:
        return stages
    wanted: set[str] = set()
    for part in spec.split(","):
        part = part.strip()
        if part and not re.fullmatch(r"\d+(-\d+)?", part):
            raise RunError(f"--stages {spec!r}: expected numbers like '01,03' or '00-04'")
        if "-" in part:
            lo, hi = (int(x) for x in part.split("-", 1))
            if lo > hi:
                raise RunError(
                    f"--stages {part!r} runs backwards; write the range low-high, e.g. {hi:02d}-{lo:02d}"
                )
            wanted.update(f"{i:02d}" for i in range(lo, hi + 1))
        elif part:
            wanted.add(f"{int(part):02d}")
    known = {s.number for s in stages}
    unknown = sorted(wanted - known)
    if unknown:
        raise RunError(f"unknown stage(s) {unknown}; stages are {sorted(known)}")
    return [s for s in stages if s.number in wanted]


def check_run_dir(run_dir: Path, root: Path) -> None:
    """Refuse a run folder that holds the project: executed notebooks would overwrite the sources."""
    notebooks = (root / "notebooks").resolve()
    if run_dir.exists() and not run_dir.is_dir():
        raise RunError(f"run folder {run_dir} exists and is not a folder; name a folder (--run-dir)")
    if (run_dir / "pyproject.toml").exists() or run_dir == notebooks or run_dir in notebooks.parents:
        raise RunError(
            f"run folder {run_dir} contains the project's notebooks or pyproject.toml; "
            "choose a folder of its own (run_name, reports_dir or --run-dir)"
        )


def _teacher_totals(stages: list[dict[str, Any]]) -> dict[str, int]:
    tot = {"prompt_tokens": 0, "completion_tokens": 0, "cache_hits": 0, "cache_misses": 0, "failed": 0}
    for st in stages:
        usage = st.get("teacher_usage") or {}
        for k in tot:
            tot[k] += int(usage.get(k, 0))
    return tot


class Runner:
    """One study's run: its params, run folder and stages; :meth:`run` runs the chosen ones."""

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
        check_run_dir(self.run_dir, self.root)
        self.stages = discover_stages(self.root / "notebooks")
        self.plan: dict[str, Any] | None = None  # made before the first stage (see plan.make_plan)
        self._reserve = DiskReserve(self.run_dir)  # held while running: see run/interrupts.py
        if not self.stages:
            raise RunError(f"no numbered notebooks in {self.root / 'notebooks'}")

    # -- manifest ------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.run_dir / "manifest.json"

    def _load_manifest(self) -> dict[str, Any]:
        return read_manifest(self.run_dir) or {"stages": []}

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
            "plan": self.plan,
            "stages": stages,
        }
        self._reserve.write(lambda: write_json(self.manifest_path, manifest))
        return manifest

    # -- running -------------------------------------------------------------------------------
    def _can_skip(self, prev: dict[str, Any], fp: str) -> bool:
        """The stage ran (or was skipped) with this fingerprint and every output it listed is still there."""
        if prev.get("status") not in ("ok", "skipped") or prev.get("fingerprint") != fp:
            return False
        return all((self.run_dir / o).exists() for o in prev.get("outputs", []))

    def run(
        self, stages: str | None = None, force: bool = False, progress: bool = True, screenshot: bool = True
    ) -> dict[str, Any]:
        """Run the chosen stages, holding the run folder's lock; model specs are checked first."""

        select_stages(self.stages, stages)  # a bad --stages fails before any check or lock
        problems = check_model_specs(self.params)
        if problems:
            raise RunError(
                "model specs that cannot be loaded (nothing was run):\n  - " + "\n  - ".join(problems)
            )
        with run_lock(self.run_dir), sigterm_as_interrupt():
            try:
                return self._run(stages, force, progress, screenshot)
            finally:
                self._reserve.release()

    def _run(self, stages: str | None, force: bool, progress: bool, screenshot: bool) -> dict[str, Any]:
        """Each chosen stage in order: skipped when unchanged, else executed and recorded; the manifest is
        rewritten after every stage and the report after the last (or the first that fails)."""
        chosen = {s.name for s in select_stages(self.stages, stages)}
        entries = self._start()
        fingerprints = stage_fingerprints(self.stages, self.params)
        for st in self.stages:
            if st.name not in chosen:
                continue
            fp = fingerprints[st.name]
            prev = entries.get(st.name)
            if not force and prev is not None and self._can_skip(prev, fp):
                entries[st.name] = self._skipped(st, prev)
                self._write_manifest(entries)
                continue
            entries[st.name] = entry = self._run_stage(st, fp, progress)
            self._write_manifest(entries)  # after every stage: a killed run still shows what it did
            if entry["status"] != "ok":
                self._stop(st, entry, screenshot)
        manifest = self._write_manifest(entries)
        self.write_report(screenshot)
        return manifest

    def _start(self) -> dict[str, dict[str, Any]]:
        """The run folder made, the entries of earlier runs read, and the plan on disk before any stage."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._reserve.hold()
        (self.run_dir / "notebooks").mkdir(exist_ok=True)
        entries = {e["name"]: e for e in self._load_manifest().get("stages", [])}
        self.plan = self._plan(None)
        self._write_manifest(entries)
        return entries

    def _skipped(self, st: StageInfo, prev: dict[str, Any]) -> dict[str, Any]:
        """The earlier entry marked skipped; a resumed run still tells how long the stage took when it
        produced these outputs."""
        ran_in = prev.get("ran_in_seconds") if prev["status"] == "skipped" else prev.get("seconds")
        print(f"[{st.name}] skipped (notebook, params, code and upstream unchanged, outputs present)")
        return {**prev, "status": "skipped", "seconds": 0.0, "ran_in_seconds": ran_in}

    def _run_stage(self, st: StageInfo, fingerprint: str, progress: bool) -> dict[str, Any]:
        """Execute one stage's notebook and return its manifest entry: ok, failed or stopped at the budget."""
        if progress:
            print(f"[{st.name}] running ...", flush=True)
        stage_record_path(self.run_dir, st.name).unlink(missing_ok=True)
        entry: dict[str, Any] = {
            "name": st.name,
            "notebook": f"notebooks/{st.notebook.name}",
            "fingerprint": fingerprint,
            "planned": self._plan(st.name),
        }
        budget_stop_path(self.run_dir, st.name).unlink(missing_ok=True)
        t0 = time.time()
        try:
            self._execute(st, progress)
        except KeyboardInterrupt as err:  # Ctrl-C or SIGTERM (see run/interrupts.py)
            entry.update(_interrupted(interrupt_name(err), round(time.time() - t0, 2)))
        except Exception as err:  # papermill wraps the cell's exception
            entry.update(self._failed(st, err, round(time.time() - t0, 2)))
        else:
            entry.update(self._finished(st, round(time.time() - t0, 2)))
        print(f"[{st.name}] {entry['status']} in {entry['seconds']:.1f} s", flush=True)
        return entry

    def _execute(self, st: StageInfo, progress: bool) -> None:
        """Run the notebook with papermill into the run folder, its progress shown live."""
        import papermill as pm  # deferred: heavy, only when a stage runs

        with _live_progress(self.run_dir, st.name, show=progress):
            pm.execute_notebook(
                str(st.notebook),
                str(self._executed_notebook(st)),
                parameters={
                    "params_path": str(self.params_path),
                    "run_dir": str(self.run_dir),
                    "overrides": self.overrides,
                },
                cwd=str(st.notebook.parent),
                kernel_name="python3",
                progress_bar=False,  # the stage's own progress lines replace the cell counter
                report_mode=False,
                kernel_manager_class=logged_kernel_manager(
                    self.run_dir / PROGRESS_DIR / f"{st.name}.kernel.log"
                ),
            )

    def _executed_notebook(self, st: StageInfo) -> Path:
        return self.run_dir / "notebooks" / st.notebook.name

    def _failed(self, st: StageInfo, err: Exception, seconds: float) -> dict[str, Any]:
        """A failed stage's entry, or a stopped one when the teacher budget stopped it cleanly (what was
        answered is cached, a rerun continues)."""
        # Server text in an error may echo the key: redact before the manifest and report see it.
        error = redact(
            _describe_failure(err), env_secrets(*(tp.api_key_env for _, tp in self.params.models.teachers()))
        )
        if getattr(err, "ename", None) == "KeyboardInterrupt":  # the kernel got the Ctrl-C first
            return _interrupted("Ctrl-C (SIGINT)", seconds)
        if is_disk_full(err) or "[Errno 28]" in error:
            error = f"disk full: {error}; free space, then rerun the same command (it resumes)"
        result: dict[str, Any] = {"status": "failed", "seconds": seconds, "outputs": [], "error": error}
        stop = read_budget_stop(self.run_dir, st.name)
        if stop is not None:
            result.update(status="stopped", stopped="budget", error=stop.pop("message"),
                          teacher_usage=stop.pop("teacher_usage"), budget=stop)  # fmt: skip
        return result

    def _finished(self, st: StageInfo, seconds: float) -> dict[str, Any]:
        """A stage's entry from the record ``stage.finish()`` wrote; failed when the notebook never called it."""
        record = read_stage_record(self.run_dir, st.name) or {}
        result: dict[str, Any] = {
            "status": "ok",
            "seconds": seconds,
            "outputs": [f"notebooks/{st.notebook.name}", *record.get("outputs", [])],
            "teacher_usage": record.get("teacher_usage"),
            "notes": record.get("notes", {}),
        }
        if not record:
            result.update(status="failed", error="the notebook did not call stage.finish()")
        return result

    def _stop(self, st: StageInfo, entry: dict[str, Any], screenshot: bool) -> NoReturn:
        """End the run at a stage that did not finish: the report first, then the error naming it."""
        try:
            self.write_report(screenshot)
        except Exception as err:  # e.g. a full disk cut the executed notebook: the stage's error comes first
            print(f"[report] not written: {type(err).__name__}: {str(err)[:200]}", flush=True)
        if entry["status"] == "interrupted":
            raise RunInterrupted(f"stage {st.name} {entry['error']}")
        if entry["status"] == "stopped":
            raise BudgetStop(f"stage {st.name} stopped: {entry['error']}")
        raise RunError(
            f"stage {st.name} failed: {entry['error']}\n(executed notebook: {self._executed_notebook(st)})"
        )

    def _plan(self, stage: str | None) -> dict[str, Any] | None:
        """The run's plan (``stage`` None) or one stage's plan with the inputs present now; a plan that
        cannot be made is recorded as its error and never stops the run."""

        names = [stage] if stage else [s.name for s in self.stages]
        try:
            plan = make_plan(self.params, self.root, self.run_dir, names)
        except Exception as err:  # planning is advisory; the stage itself reports bad inputs
            print(f"[plan] not made: {type(err).__name__}: {str(err)[:300]}", flush=True)
            return {"error": f"{type(err).__name__}: {str(err)[:500]}"}
        return plan["stages"][0] if stage else plan

    def write_report(self, screenshot: bool = True) -> Path | None:
        """``report.html`` and, with ``screenshot`` and Chromium installed, ``report.png`` (its top)."""

        report = build_report(self.run_dir)
        if report is not None and screenshot:
            screenshot_report(report)
        return report


@contextmanager
def _live_progress(run_dir: Path, stage: str, show: bool) -> Iterator[None]:
    """Point the kernel at a fresh progress file and, when ``show``, print what it reports meanwhile."""
    path = run_dir / PROGRESS_DIR / f"{stage}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    before = os.environ.get(PROGRESS_ENV)
    os.environ[PROGRESS_ENV] = str(path)  # the kernel papermill starts inherits the environment
    try:
        if show:
            with ProgressTail(path, stage, printer=lambda line: print(line, flush=True)):
                yield
        else:
            yield
    finally:
        if before is None:
            os.environ.pop(PROGRESS_ENV, None)
        else:
            os.environ[PROGRESS_ENV] = before


def _interrupted(why: str, seconds: float) -> dict[str, Any]:
    """The entry of a stage stopped from outside: never skipped next time, so a rerun resumes it."""
    return {
        "status": "interrupted",
        "seconds": seconds,
        "outputs": [],
        "error": f"interrupted by {why}; answered teacher requests are cached: rerun the same command "
        "to resume",
    }


def _describe_failure(err: Exception) -> str:
    ename = getattr(err, "ename", None)
    evalue = getattr(err, "evalue", None)
    if ename:
        return f"{ename}: {evalue}"
    return f"{type(err).__name__}: {err}"
