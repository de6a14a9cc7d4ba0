"""Stage fingerprints: what a stage's result depends on, so the runner and ``Stage.require`` agree on reuse.

Kept apart from the runner so that a stage (which checks its inputs' fingerprints) imports only this and
the config, not the runner's planning and reporting: :mod:`code_hash` follows imports, and a stage's code
hash should cover the code that computes it, not the whole package.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from compeffdist_utils.core.config import Params
from compeffdist_utils.core.hashing import stage_code_hash

# The params sections each stage reads (by notebook number). A stage not listed depends on all params.
STAGE_SECTIONS: dict[str, list[str]] = {
    "00": ["corpus", "models"],
    "01": ["models.teacher", "models.writer", "attributes"],
    "02": ["models.embedder", "clustering"],
    "03": ["models.teacher", "models.writer", "models.embedder", "instructions"],
    "04": ["models.teacher", "distill_data"],
    "05": ["models.student", "models.dtype", "difficulty", "selection"],
    "06": ["models.student", "models.dtype", "training"],
    "07": ["models.student", "models.teacher", "models.dtype", "evaluation", "training.max_length"],
    "08": ["models.student", "models.dtype", "selection", "training", "evaluation", "efficiency"],
}


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


def fingerprint(stage: StageInfo, params: Params, upstream: str) -> str:
    sections = STAGE_SECTIONS.get(stage.number)
    deps = {s: params.section_dump(s) for s in sections} if sections else params.model_dump(mode="json")
    blob = json.dumps(
        {
            "nb": hashlib.sha256(stage.notebook.read_bytes()).hexdigest(),
            "params": deps,
            "code": stage_code_hash(stage.notebook),
            "up": upstream,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def stage_fingerprints(stages: list[StageInfo], params: Params) -> dict[str, str]:
    """Each stage's fingerprint for ``params``, chained so that an upstream change ripples down."""
    out: dict[str, str] = {}
    upstream = ""
    for st in stages:
        upstream = out[st.name] = fingerprint(st, params, upstream)
    return out
