"""Each export test reads its Parquet files through a datasets cache of its own.

`datasets` caches the build of a local folder; its key for local files uses modification times, not content:
in one pytest session a synthetic export and the CI run's export (both `.../dataset/pool/...`)
were seen to share a cache entry, so `load_dataset` returned the other folder's rows.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _own_datasets_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets.config  # deferred: heavy, only for the export tests

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-datasets-cache"))
