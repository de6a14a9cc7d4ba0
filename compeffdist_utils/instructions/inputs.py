"""What the stage-03 steps are built from: the clusters in order of size, a cluster's attributes by
count, and user texts shortened into style references.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

REFERENCE_MAX_CHARS = 500  # style references are cut (at a word) to keep demo prompts short


def select_clusters(clusters: Sequence[dict[str, Any]], max_clusters: int | None) -> list[dict[str, Any]]:
    """The clusters to build instructions for: largest total count first, at most ``max_clusters``."""
    ordered = sorted(clusters, key=lambda c: (-int(c["total_count"]), str(c["cluster_id"])))
    usable = [c for c in ordered if c.get("attributes")]
    return usable[:max_clusters] if max_clusters else usable


def attributes_by_count(cluster: dict[str, Any]) -> list[dict[str, Any]]:
    """The cluster's attributes, most frequent first (ties: alphabetical)."""
    return sorted(cluster["attributes"], key=lambda a: (-int(a["count"]), a["attr"]))


def cut_reference(text: str, limit: int = REFERENCE_MAX_CHARS) -> str:
    """A user text with its whitespace collapsed, cut at a word to at most ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."
