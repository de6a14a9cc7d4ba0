"""An on-disk cache of computed arrays (embeddings, 2-D projections), keyed by what produced them.

The response cache spares the teacher on a rerun; this spares the rest of stages 02-03. Embedding the
same names again costs a model load, and UMAP compiles its numba kernels in every new process (about 10 s
on a 2-core CPU even for a dozen points), which alone would keep a cached rerun of 01-04 above 10% of a
cold one. Files are written atomically (:func:`io.atomic_write_bytes`), so a killed process leaves no
half array.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from compeffdist_utils.core.io import atomic_write_bytes


def array_key(*parts: Any) -> str:
    """A stable digest of JSON-able parts; numpy arrays count by dtype, shape and bytes."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(f"{part.dtype}{part.shape}".encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
        h.update(b"\x00")
    return h.hexdigest()[:40]


def cached_array(
    cache_dir: Path | None, kind: str, key: str, compute: Callable[[], np.ndarray]
) -> np.ndarray:
    """``compute()``, or the array an earlier call with the same ``kind`` and ``key`` stored.

    ``cache_dir=None`` always computes. A file that does not load (damaged disk, older numpy) is computed
    again and replaced rather than raised: a cache must never be the reason a stage fails.
    """
    if cache_dir is None:
        return np.asarray(compute())
    path = Path(cache_dir) / "arrays" / kind / f"{key}.npy"
    if path.is_file():
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
    arr = np.asarray(compute())
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())
    return arr
