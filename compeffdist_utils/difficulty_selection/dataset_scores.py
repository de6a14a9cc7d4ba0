"""Difficulty scores of a whole dataset, through a cache: the stage's entry point (:func:`score_dataset`).

Scores are cached in SQLite per (scorer identity, sample content hash); the cache keeps raw sums, so
``include_rank0`` can change without rescoring. The scorer identity includes the code hash of
:mod:`.scoring`, which computes the scores, and of the package modules it imports (:mod:`.token_stats`
among them; see :mod:`compeffdist_utils.core.hashing`), so a changed definition rescores.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from compeffdist_utils.core.config import DifficultyParams, Params
from compeffdist_utils.core.hashing import code_hash
from compeffdist_utils.core.progress import tqdm
from compeffdist_utils.core.samples import content_hash, require_samples
from compeffdist_utils.difficulty_selection.scoring import (
    RawScore,
    encode_pairs,
    fit_to_window,
    score_encoded,
    unconditional_prefix,
)
from compeffdist_utils.models import load_causal_lm, resolve_alias
from compeffdist_utils.models.batching import Batcher

CACHE_VERSION = 1


# -- cache ----------------------------------------------------------------------------------------------
def scorer_identity(model: Any, tokenizer: Any, settings: DifficultyParams) -> str:
    """A hash of what determines the raw sums: the code, weights, tokenizer, dtype, nucleus_p and max_length.

    The weights are fingerprinted by every tensor's name, shape, dtype and first/last 1024 values:
    a fine-tuned or LoRA-adapted model differs there, and hashing whole multi-GB models would be slow.
    The folder a model was loaded from is left out, so the same weights hit the cache anywhere.
    """
    h = hashlib.sha256()
    h.update(
        json.dumps(
            [
                CACHE_VERSION,
                # the modules that compute the scores
                code_hash(["difficulty_selection.scoring", "difficulty_selection.token_stats"]),
                type(model).__name__,
                settings.nucleus_p,
                settings.max_length,
            ]
        ).encode()
    )
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().reshape(-1)
        h.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}".encode())
        h.update(flat[:1024].float().cpu().numpy().tobytes())
        h.update(flat[-1024:].float().cpu().numpy().tobytes())
    probe = "Ünïcødé probe: The café's 3 reviews weren't great!\n\tOK? 12345 <tag>"
    tok_probe = [len(tokenizer), unconditional_prefix(tokenizer), encode_pairs(tokenizer, [probe], [probe])]
    h.update(json.dumps(tok_probe).encode())
    return h.hexdigest()


class ScoreCache:
    """SQLite store of :class:`RawScore` per (scorer identity, sample content hash), committed per batch."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, timeout=60)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS difficulty (scorer TEXT NOT NULL, sample TEXT NOT NULL, "
            "raw TEXT NOT NULL, created REAL NOT NULL, PRIMARY KEY (scorer, sample))"
        )
        self._conn.commit()

    def get_many(self, scorer: str, keys: Sequence[str]) -> dict[str, RawScore]:
        found: dict[str, RawScore] = {}
        for i in range(0, len(keys), 500):
            chunk = list(keys[i : i + 500])
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT sample, raw FROM difficulty WHERE scorer = ? AND sample IN ({marks})",
                [scorer, *chunk],
            )
            found.update({key: RawScore(**json.loads(raw)) for key, raw in rows})
        return found

    def put_many(self, scorer: str, items: dict[str, RawScore]) -> None:
        now = time.time()
        self._conn.executemany(
            "INSERT OR REPLACE INTO difficulty VALUES (?, ?, ?, ?)",
            [(scorer, key, json.dumps(asdict(raw)), now) for key, raw in items.items()],
        )
        self._conn.commit()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ScoreCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- the dataset entry point ----------------------------------------------------------------------------
def load_scorer(params: Params, run_dir: Path | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) of ``difficulty.scorer`` (default: the student) in ``difficulty.dtype``."""

    spec = resolve_alias(params.difficulty.scorer or "student", params, run_dir)
    return load_causal_lm(spec, params, dtype=params.difficulty.dtype)


def score_dataset(
    records: Sequence[dict[str, Any]],
    model: Any,
    tokenizer: Any,
    settings: DifficultyParams,
    cache_path: str | Path | None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Scores for every record, in input order: {sample_id, rank, ifd, ppl, ppl_uncond, length, n_tokens,
    n_nonzero, truncated}. Identical content is scored once; ``cache_path`` None scores without a cache.
    """

    samples = require_samples(records, "score_dataset")
    keys = [content_hash(s["instruction"], s["output"]) for s in samples]
    text_of = {k: (s["instruction"], s["output"]) for k, s in zip(keys, samples, strict=True)}
    ident = scorer_identity(model, tokenizer, settings)
    cache = ScoreCache(cache_path) if cache_path is not None else None
    try:
        found = cache.get_many(ident, list(text_of)) if cache else {}
        todo = [k for k in text_of if k not in found]
        if todo:
            pairs = encode_pairs(tokenizer, [text_of[k][0] for k in todo], [text_of[k][1] for k in todo])
            empty = [k for k, (_, y) in zip(todo, pairs, strict=True) if not y]
            if empty:
                raise ValueError(f"{len(empty)} output(s) tokenise to nothing, e.g. {text_of[empty[0]][1]!r}")
            windows = [fit_to_window(x, y, settings.max_length) for x, y in pairs]
            full_len = [len(y) for _, y in pairs]
            widths = [len(x) + len(y) for x, y in windows]
            order = sorted(range(len(todo)), key=lambda i: -widths[i])
            bar = tqdm(total=len(todo), desc="difficulty scores", unit="sample", disable=not progress)
            batcher = Batcher(settings.batch_size, model, "score")
            for batch, raws in batcher.run(
                order,
                widths,
                lambda b: score_encoded(
                    model, tokenizer, [windows[j] for j in b], settings, [full_len[j] for j in b]
                ),
            ):
                new = {todo[j]: raw for j, raw in zip(batch, raws, strict=True)}
                found.update(new)
                if cache:
                    cache.put_many(ident, new)
                bar.update(len(batch))
            bar.close()
    finally:
        if cache:
            cache.close()
    return [
        {"sample_id": s["sample_id"], **found[k].scores(settings.include_rank0)}
        for s, k in zip(samples, keys, strict=True)
    ]
