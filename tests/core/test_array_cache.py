"""The on-disk array cache behind embeddings and UMAP maps."""

from __future__ import annotations

import numpy as np
import pytest

from compeffdist_utils.core.array_cache import array_key, cached_array
from compeffdist_utils.core.config import Params
from compeffdist_utils.models import loading as models


def test_computes_once_per_key_and_survives_a_damaged_file(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return np.arange(6, dtype=np.float32).reshape(2, 3)

    key = array_key("spec", ["a", "b"])
    first = cached_array(tmp_path, "emb", key, compute)
    again = cached_array(tmp_path, "emb", key, compute)
    assert len(calls) == 1 and np.array_equal(first, again) and again.dtype == np.float32
    cached_array(tmp_path, "emb", array_key("spec", ["a", "c"]), compute)
    assert len(calls) == 2
    (stored,) = (tmp_path / "arrays" / "emb").glob(f"{key}.npy")
    stored.write_bytes(b"not an array")
    assert np.array_equal(cached_array(tmp_path, "emb", key, compute), first) and len(calls) == 3
    assert not [p for p in (tmp_path / "arrays").rglob("*") if p.name.startswith(".")]  # no temp file left
    cached_array(None, "emb", key, compute)
    assert len(calls) == 4


def test_keys_tell_arrays_apart_by_content_dtype_and_shape():
    x = np.zeros((2, 3), dtype=np.float32)
    assert array_key(x) == array_key(x.copy())
    assert (
        len({array_key(x), array_key(x.astype(np.float64)), array_key(x.reshape(3, 2)), array_key(x + 1)})
        == 4
    )
    assert array_key(x, 42) != array_key(x, 43)


def test_embeddings_are_reused_without_loading_the_model(tmp_path, monkeypatch):
    p = Params(cache_dir=str(tmp_path))
    names = ["sarcasm", "value for money"]
    vecs = np.ones((2, 4), dtype=np.float32)

    class Fake:
        def encode(self, texts, **_):
            return vecs[: len(texts)]

    monkeypatch.setattr(models, "load_embedder", lambda spec, params: Fake())
    assert np.array_equal(models.embed_texts("embedded:minilm-l6", names, p), vecs)

    def no_model(spec, params):
        raise AssertionError("the embedder was loaded although the vectors were cached")

    monkeypatch.setattr(models, "load_embedder", no_model)
    assert np.array_equal(models.embed_texts("embedded:minilm-l6", names, p), vecs)
    with pytest.raises(AssertionError, match="was loaded"):
        models.embed_texts("embedded:minilm-l6", names, p, use_cache=False)
