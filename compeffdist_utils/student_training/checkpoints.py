"""Stage 06's resume logic: the fingerprint of what decides the trained weights, and the checkpoints a
training may resume from (those of the same fingerprint and number of processes, the newest complete one).

A change of params or data starts afresh: the old checkpoints are deleted, with a log message.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from compeffdist_utils.core.config import Params
from compeffdist_utils.core.io import read_json, write_json

log = logging.getLogger(__name__)

FINGERPRINT_FILE = "fingerprint.json"


def training_settings(params: Params) -> dict[str, Any]:
    """``params.training`` without ``report_to``: where the Trainer logs does not change the weights, so
    switching TensorBoard on or off reuses a finished training."""
    return params.training.model_dump(mode="json", exclude={"report_to"})


def fingerprint(records: Sequence[dict[str, Any]], params: Params) -> str:
    """What decides the trained weights: data, student spec, dtype and training settings."""
    h = hashlib.sha256()
    meta = {
        "student": params.models.student,
        "dtype": params.models.dtype,
        "training": training_settings(params),
    }
    h.update(json.dumps(meta, sort_keys=True).encode())
    for rec in records:
        h.update(json.dumps([rec.get("instruction"), rec.get("output")]).encode())
    return h.hexdigest()[:16]


def prepare_checkpoints(
    ckpt_dir: Path, fp: str, resume: bool, is_main: bool, world_size: int = 1
) -> str | None:
    """The checkpoint to resume from, after dropping checkpoints that belong to other params or data.

    Every process first checks the world size (so all of them stop, none waits forever); only the main
    process deletes; the others wait for it, then all agree on the same checkpoint.
    """
    from accelerate import PartialState  # deferred: heavy, only when training

    if resume:
        _refuse_other_world_size(ckpt_dir, fp, world_size)
    if is_main:
        drop_stale_checkpoints(ckpt_dir, fp, resume, world_size)
    PartialState().wait_for_everyone()
    return last_complete_checkpoint(ckpt_dir) if resume else None


def _refuse_other_world_size(ckpt_dir: Path, fp: str, world_size: int) -> None:
    """Resuming with another number of processes would skip other samples than were trained on (the
    Trainer skips whole steps of the old effective batch): refuse it rather than train on a silent mix."""
    fp_file = ckpt_dir / FINGERPRINT_FILE
    saved = read_json(fp_file) if fp_file.exists() else {}
    old = saved.get("world_size", 1)
    if saved.get("fingerprint") == fp and old != world_size and any(ckpt_dir.glob("checkpoint-*")):
        raise RuntimeError(
            f"the checkpoints in {ckpt_dir} were written by a {old}-process training and this one has "
            f"{world_size}: resume with `accelerate launch --num_processes {old} ...`, or start afresh "
            "with --no-resume"
        )


def last_complete_checkpoint(ckpt_dir: Path) -> str | None:
    """The newest checkpoint whose trainer state was written: the main process writes it last, so a
    checkpoint cut short by a killed process is passed over for the one before."""
    steps = [
        int(p.name.split("-")[-1])
        for p in ckpt_dir.glob("checkpoint-*")
        if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()
    ]
    return str(ckpt_dir / f"checkpoint-{max(steps)}") if steps else None


def drop_stale_checkpoints(ckpt_dir: Path, fp: str, resume: bool, world_size: int = 1) -> None:
    fp_file = ckpt_dir / FINGERPRINT_FILE
    if ckpt_dir.exists():
        old = read_json(fp_file).get("fingerprint") if fp_file.exists() else None
        if old != fp or not resume:
            if any(ckpt_dir.glob("checkpoint-*")):
                why = "params or data changed" if old != fp else "resume is off"
                log.warning("deleting old checkpoints in %s (%s); training starts afresh", ckpt_dir, why)
            shutil.rmtree(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    write_json(fp_file, {"fingerprint": fp, "world_size": world_size})
