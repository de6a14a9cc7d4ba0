"""Attribute inventories to cluster: stage 01's, or one made elsewhere (``clustering.inventory_file``).

Three formats are read, chosen by content rather than trusted extension:

- the authors' release format: a (pretty-printed) JSON array of ``{idx, attr, attr_names, count}``;
- JSON lines, one ``{attr, count}`` object per line (stage 01 writes this);
- CSV with a header holding ``attr`` (or ``name``) and ``count``.

Extra fields are ignored except ``top_description``, which the notebooks show when present.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from compeffdist_utils.core.io import DataFileError, iter_jsonl_numbered, read_text

NAME_FIELDS = ("attr", "name")  # the first one present names the attribute


class InventoryError(ValueError):
    """An attribute inventory that cannot be used; the message names the file and the problem."""


class InventoryEntry(BaseModel):
    attr: str
    count: int
    top_description: str | None = None


def _entry(raw: dict[str, Any], where: str) -> InventoryEntry:
    name_field = next((f for f in NAME_FIELDS if f in raw), None)
    missing = ([] if name_field else ["attr"]) + ([] if "count" in raw else ["count"])
    if missing:
        raise InventoryError(
            f"{where}: missing field(s) {missing}; an inventory needs 'attr' (or 'name') and 'count'"
        )
    attr = str(raw[name_field] or "").strip()
    if not attr:
        raise InventoryError(f"{where}: empty {name_field!r}")
    try:
        count_f = float(raw["count"])
    except (TypeError, ValueError):
        raise InventoryError(f"{where}: 'count' must be a whole number, got {raw['count']!r}") from None
    if not count_f.is_integer() or count_f < 0:
        raise InventoryError(f"{where}: 'count' must be a whole number >= 0, got {raw['count']!r}")
    desc = raw.get("top_description")
    return InventoryEntry(attr=attr, count=int(count_f), top_description=str(desc) if desc else None)


def _json_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    try:
        text = read_text(path)
    except DataFileError as err:
        raise InventoryError(str(err)) from None
    if not text.lstrip().startswith("["):
        try:
            return [(f"{path}:{lineno}", rec) for lineno, rec in iter_jsonl_numbered(path)]
        except DataFileError as err:
            raise InventoryError(
                f"{err}; an inventory is a JSON array or one {{attr, count}} object per line"
            ) from None
    try:
        items = json.loads(text)
    except json.JSONDecodeError as err:
        raise InventoryError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None
    bad = next((i for i, item in enumerate(items) if not isinstance(item, dict)), None)
    if bad is not None:
        raise InventoryError(f"{path}: item {bad} of the array is not an {{attr, count}} object")
    return [(f"{path}: item {i}", item) for i, item in enumerate(items)]


def _csv_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    try:
        text = read_text(path)
    except DataFileError as err:
        raise InventoryError(str(err)) from None
    with io.StringIO(text, newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = ([] if any(f in header for f in NAME_FIELDS) else ["attr"]) + (
            [] if "count" in header else ["count"]
        )
        if missing:
            raise InventoryError(
                f"{path}: missing column(s) {missing} in the header {header}; "
                "an inventory needs 'attr' (or 'name') and 'count'"
            )
        return [(f"{path}:{i}", rec) for i, rec in enumerate(reader, 2)]


def load_inventory(path: str | Path) -> list[InventoryEntry]:
    """Read an inventory (JSON array, JSON lines or CSV; see the module docstring).

    A repeated attribute is an error rather than a silent merge: it usually means the file was built
    without normalising names, and summing its counts would hide that.
    """
    path = Path(path)
    if not path.is_file():
        raise InventoryError(f"inventory file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        rows = _json_rows(path)
    elif suffix == ".csv":
        rows = _csv_rows(path)
    else:
        raise InventoryError(f"{path}: unsupported inventory format {suffix!r}; use .json, .jsonl or .csv")
    entries = [_entry(rec, where) for where, rec in rows]
    seen: dict[str, int] = {}
    for e in entries:
        seen[e.attr] = seen.get(e.attr, 0) + 1
    dups = sorted(a for a, n in seen.items() if n > 1)
    if dups:
        raise InventoryError(f"{path}: attribute(s) listed more than once: {dups[:10]}")
    return entries
