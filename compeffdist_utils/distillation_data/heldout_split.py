"""The held-out split of stage 04: answered samples set apart before selection and never trained on, so
that stage 07 can measure each student's loss on teacher answers it has not seen.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from compeffdist_utils.core.io import read_jsonl

HELDOUT_FILE = "distill/heldout.jsonl"


def split_heldout(
    records: Sequence[dict[str, Any]], n_heldout: int, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(pool, heldout): a seeded ``n_heldout`` samples set apart, both in their original order.

    At least one sample stays in the pool, so a small run never loses all its training data.
    """
    n = min(max(n_heldout, 0), max(len(records) - 1, 0))
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    held = set(order[:n])
    pool = [r for i, r in enumerate(records) if i not in held]
    return pool, [records[i] for i in sorted(held)]


def read_heldout(run_dir: str | Path) -> list[dict[str, Any]]:
    """The held-out samples of a run, or [] when stage 04 set none apart."""
    path = Path(run_dir) / HELDOUT_FILE
    return read_jsonl(path) if path.exists() else []
