"""Stage 07's reading of an extraction answer (ATSA/ACSA/ASQP/OpeNER): the generated text as answer records.

The text is parsed as a JSON array with a fallback to the outermost ``[...]``, then with the authors'
repair of a cut-off array (keep it up to its last ``}`` and close it with ``]``); an answer that still
does not parse counts as a parse failure and as the empty prediction (it costs recall, never crashes).
Answer objects missing a field are dropped and counted. Every other answer tuple is scored as given: a
term that is not in the sentence or a label outside the label set is a false positive. How this compares
with the authors' ``parse_utils/*_json.py``, case by case, is in ``docs/AUTHORS_DIFFERENCES.md``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

_FAILED = object()  # "did not parse" (``None`` is a valid JSON value)


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return _FAILED


def parse_json_array(text: str) -> tuple[list[Any], str]:
    """(items, status): status "ok" (the whole answer parsed), "fallback" (the outermost [...] parsed),
    "repaired" (an array cut off mid-way, kept up to its last ``}`` and closed with ``]``, as the
    authors' answer extraction does) or "failed" (nothing parsed; items = []). A lone JSON object is
    taken as a one-item array."""
    s = text.strip()
    start, end, last_obj = s.find("["), s.rfind("]"), s.rfind("}")
    candidates = [("ok", s)]
    if 0 <= start < end:
        candidates.append(("fallback", s[start : end + 1]))
    if 0 <= start < last_obj:
        candidates.append(("repaired", s[start : last_obj + 1] + "]"))
    status, value = next(
        ((st, v) for st, c in candidates if (v := _loads(c)) is not _FAILED), ("failed", _FAILED)
    )
    if value is _FAILED:
        return [], "failed"
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return [], "failed"
    return value, status


def items_to_records(items: Sequence[Any], fields: Sequence[str]) -> tuple[list[dict[str, str]], int]:
    """Keep answer objects that have every field (values as strings, null -> "NULL"); count the rest."""
    kept, invalid = [], 0
    for it in items:
        if isinstance(it, dict) and all(f in it for f in fields):
            kept.append({f: "NULL" if it[f] is None else str(it[f]) for f in fields})
        else:
            invalid += 1
    return kept, invalid
