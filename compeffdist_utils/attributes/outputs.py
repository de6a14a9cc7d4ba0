"""Stage 01's files and stage record: the answers with their parses, the attribute records, the
inventory, and the counts the runner and report read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from compeffdist_utils.attributes.enumeration import Enumeration
from compeffdist_utils.attributes.inventory import AttributeStats, ParsedAttribute
from compeffdist_utils.attributes.non_attributes import non_attribute_counts
from compeffdist_utils.attributes.parsing import PARSE_STATUSES
from compeffdist_utils.core.io import write_jsonl
from compeffdist_utils.stage.stage import Stage


def save_enumerations(stage: Stage, enumerations: Sequence[Enumeration]) -> None:
    """Write ``attributes/enumerations.jsonl`` (one teacher answer with its parse per line)."""
    write_jsonl(stage.output("attributes/enumerations.jsonl"), [e.model_dump() for e in enumerations])


def save_inventory(
    stage: Stage, records: Sequence[ParsedAttribute], inventory: Sequence[AttributeStats]
) -> None:
    """Write ``attributes/parsed.jsonl`` (every occurrence) and ``attributes/inventory.jsonl`` (names kept)."""
    write_jsonl(stage.output("attributes/parsed.jsonl"), [r.model_dump() for r in records])
    write_jsonl(stage.output("attributes/inventory.jsonl"), [s.model_dump() for s in inventory])


def empty_inventory_advice(min_count: int) -> str:
    """What to change when no name passed the cut (stage 02 needs at least one)."""
    return (
        f"**No attribute was seen more than {min_count} times** (names that are not attributes, such as "
        "'sentence 1', do not count). Stage 02 needs at least one: lower `attributes.min_count` or "
        "enumerate more texts."
    )


def stage_notes(
    n_texts: int,
    counts: dict[str, int],
    records: Sequence[ParsedAttribute],
    stats: Sequence[AttributeStats],
    inventory: Sequence[AttributeStats],
    min_count: int,
) -> dict[str, Any]:
    """The notes of stage 01's record: parse yield, items, records, names, names that are not attributes
    (distinct names per reason, left out) and the names kept."""
    return {
        "n_texts": n_texts,
        "parse_status": {s: counts[s] for s in PARSE_STATUSES},
        "n_items": counts["items"],
        "n_complete_items": counts["complete_items"],
        "n_nameless_items": counts["nameless_items"],
        "n_attribute_records": len(records),
        "n_distinct_names": len(stats),
        "non_attribute_names": non_attribute_counts(s.attr for s in stats),
        "n_kept": len(inventory),
        "min_count": min_count,
    }
