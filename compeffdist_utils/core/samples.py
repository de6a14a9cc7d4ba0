"""Checking and identifying (instruction, output) samples before they are scored or selected.

Stage 05 must work on stage 04's dataset and on any JSONL of ``{instruction, output}`` records made
elsewhere, where ``sample_id``, ``cluster_id`` and ``task_name`` may be missing. Scores and selections
are joined back to records by ``sample_id``, so every record needs one, and no two records may share
one (a join would then duplicate or lose samples).

Records without an id get ``auto-<first 12 hex digits of the content hash>``; a second record with the
same content gets ``-2``, a third ``-3``, in file order. Content-derived ids (rather than line numbers)
stay the same when the file is reordered or filtered, so scores computed once still match.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from typing import Any


class SampleError(ValueError):
    """Records that cannot be scored or selected; the message names them and says why."""


def content_hash(instruction: str, output: str) -> str:
    """A stable hash of what a scorer sees; it keys the score cache, so equal content is scored once."""
    blob = json.dumps([instruction, output], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _problem(rec: Any) -> str | None:
    if not isinstance(rec, dict):
        return "not a JSON object"
    for field in ("instruction", "output"):
        value = rec.get(field)
        if not isinstance(value, str):
            return f"{field!r} is missing or not a string"
        if not value.strip():
            return f"{field!r} is empty"
    sid = rec.get("sample_id")
    if sid is not None and not isinstance(sid, (str, int)):
        return "'sample_id' must be a string or an integer"
    return None


def prepare_samples(records: Iterable[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split records into (usable copies with a ``sample_id``, skipped ``{index, sample_id, reason}``).

    Input records are not modified. Integer ids are turned into strings so joins do not depend on
    how a JSON writer typed them. Duplicate explicit ids raise :class:`SampleError`, because which of
    the two a score belongs to cannot be known.
    """
    usable: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    auto_seen: Counter[str] = Counter()
    for index, rec in enumerate(records):
        why = _problem(rec)
        if why is not None:
            sid = rec.get("sample_id") if isinstance(rec, dict) else None
            skipped.append({"index": index, "sample_id": sid, "reason": why})
            continue
        out = dict(rec)
        if out.get("sample_id") is None:
            base = "auto-" + content_hash(out["instruction"], out["output"])[:12]
            auto_seen[base] += 1
            out["sample_id"] = base if auto_seen[base] == 1 else f"{base}-{auto_seen[base]}"
        else:
            out["sample_id"] = str(out["sample_id"])
        usable.append(out)
    dupes = sorted(sid for sid, n in Counter(r["sample_id"] for r in usable).items() if n > 1)
    if dupes:
        shown = ", ".join(repr(d) for d in dupes[:5]) + (" ..." if len(dupes) > 5 else "")
        raise SampleError(f"{len(dupes)} sample_id value(s) occur more than once: {shown}")
    return usable, skipped


def require_samples(records: Iterable[Any], what: str) -> list[dict[str, Any]]:
    """Like :func:`prepare_samples`, but any unusable record is an error (nothing is dropped silently)."""
    usable, skipped = prepare_samples(records)
    if skipped:
        shown = "; ".join(f"record {s['index']}: {s['reason']}" for s in skipped[:5])
        more = f" (and {len(skipped) - 5} more)" if len(skipped) > 5 else ""
        raise SampleError(
            f"{what}: {len(skipped)} record(s) cannot be used: {shown}{more}. "
            "Filter them with samples.prepare_samples first (it reports what it skips)."
        )
    return usable
