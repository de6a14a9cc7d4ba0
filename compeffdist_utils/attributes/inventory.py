"""From parsed items to the attribute inventory (docs/METHOD.md, step 2): names normalised, occurrences
grouped per name, and the cut that decides which names are clustered: frequent enough, and attributes at
all (:mod:`.non_attributes`).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from pydantic import BaseModel

from compeffdist_utils.attributes.non_attributes import non_attribute_reason
from compeffdist_utils.attributes.parsing import Item, clean_field


class ParsedAttribute(BaseModel):
    """One normalised attribute occurrence; a line of ``attributes/parsed.jsonl``."""

    text_id: str
    domain: str
    name: str
    raw_name: str
    description: str | None
    value: str | None


class AttributeStats(BaseModel):
    """All occurrences of one normalised name; a line of ``attributes/inventory.jsonl``."""

    attr: str
    count: int
    variants: list[str]
    descriptions: list[str]
    values: list[str]
    top_description: str | None
    domains: dict[str, int]


_NAME_PREFIX = re.compile(r"^attribute\s*\d*\s*:\s*")
_USE_OF = re.compile(r"^use of\s+")


def normalise_name(raw: str) -> list[str]:
    """The normalised names for a raw item name (usually one; 'a/b' gives two).

    Lower-case; strip markdown, quotes and a leading 'attribute:'; keep what precedes ':'
    ('tone: sarcastic' -> 'tone'); split on '/' ('regret/anger' -> 'regret', 'anger'); strip a
    leading 'use of ' ('use of sarcasm' -> 'sarcasm').
    """
    name = " ".join(raw.lower().replace("*", "").replace("`", "").split())
    name = _NAME_PREFIX.sub("", name.strip("\"'“” "))
    name = name.split(":", 1)[0]
    out: list[str] = []
    for part in name.split("/"):
        part = clean_field(_USE_OF.sub("", part.strip().strip("\"'“”")))
        if part and part not in out:
            out.append(part)
    return out


def attribute_records(text_id: str, domain: str, items: Iterable[Item]) -> list[ParsedAttribute]:
    """One record per (named item, normalised name); nameless items are counted in :func:`yield_counts`."""
    return [
        ParsedAttribute(
            text_id=text_id,
            domain=domain,
            name=name,
            raw_name=item.name,
            description=item.description,
            value=item.value,
        )
        for item in items
        if item.name
        for name in normalise_name(item.name)
    ]


def aggregate(records: Iterable[ParsedAttribute]) -> list[AttributeStats]:
    """Group occurrences by normalised name; most frequent first (ties: alphabetical)."""
    groups: dict[str, list[ParsedAttribute]] = defaultdict(list)
    for r in records:
        groups[r.name].append(r)
    stats = []
    for name, recs in groups.items():
        descriptions = [r.description for r in recs if r.description]
        # Counter.most_common keeps first-seen order among ties, so the choice is deterministic.
        top = Counter(descriptions).most_common(1)
        stats.append(
            AttributeStats(
                attr=name,
                count=len(recs),
                variants=[v for v, _ in Counter(r.raw_name for r in recs).most_common()],
                descriptions=descriptions,
                values=[r.value for r in recs if r.value],
                top_description=top[0][0] if top else None,
                domains=dict(Counter(r.domain for r in recs).most_common()),
            )
        )
    stats.sort(key=lambda s: (-s.count, s.attr))
    return stats


def frequency_cut(stats: Sequence[AttributeStats], min_count: int) -> list[AttributeStats]:
    """Keep names seen MORE than ``min_count`` times (paper: > 10) that are sentiment attributes at all.

    Names such as "sentence 1" or "infographic" (:func:`.non_attributes.non_attribute_reason`) are left
    out whatever their count; :func:`.non_attributes.non_attribute_counts` counts them for the summary.
    """
    return [s for s in stats if s.count > min_count and non_attribute_reason(s.attr) is None]
