"""Tables and figures of stage 01: parse yield, the most frequent attributes, attributes per domain.

Kept apart from :mod:`attributes` (which asks the teacher and parses) so a notebook cell reads as one
call per view, and the same views can be drawn from the files in the run folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from compeffdist_utils.attributes.enumeration import Enumeration
from compeffdist_utils.attributes.inventory import AttributeStats, ParsedAttribute
from compeffdist_utils.attributes.non_attributes import non_attribute_counts, non_attribute_reason
from compeffdist_utils.attributes.parsing import PARSE_STATUSES


def yield_table(enumerations: Sequence[Enumeration], counts: dict[str, int]) -> pd.DataFrame:
    """Answers, their share and their items per parse status, with a total row."""
    statuses = list(PARSE_STATUSES)
    df = pd.DataFrame(
        {
            "answers": [counts[s] for s in statuses],
            "share": [counts[s] / max(counts["answers"], 1) for s in statuses],
            "items": [sum(e.n_items for e in enumerations if e.parse_status == s) for s in statuses],
        },
        index=statuses,
    )
    df.loc["total"] = [counts["answers"], 1.0 if counts["answers"] else 0.0, counts["items"]]
    df["share"] = df["share"].round(3)
    return df


def answer_examples(enumerations: Sequence[Enumeration], max_chars: int = 600) -> pd.DataFrame:
    """The first answer of each parse status, shortened to ``max_chars``."""
    rows = []
    for status in PARSE_STATUSES:
        e = next((e for e in enumerations if e.parse_status == status), None)
        if e is not None:
            answer = e.response if len(e.response) <= max_chars else e.response[:max_chars] + " [...]"
            rows.append(
                {"status": status, "text_id": e.text_id, "items": e.n_items,
                 "complete items": e.n_complete, "answer": answer}
            )  # fmt: skip
    return pd.DataFrame(rows, columns=["status", "text_id", "items", "complete items", "answer"]).set_index(
        "status"
    )


NOT_ATTRIBUTE_COLOUR = "tab:orange"


def top_attributes(stats: Sequence[AttributeStats], min_count: int, n: int = 25) -> Figure:
    """Horizontal bars of the ``n`` most frequent names; names kept by the cut in colour.

    Grey: below the frequency cut; orange: not a sentiment attribute (:mod:`.non_attributes`), left out
    whatever its count.
    """
    top = list(stats[:n])
    fig, ax = plt.subplots(figsize=(9, 0.28 * max(len(top), 4) + 1))
    if top:
        colors = [
            NOT_ATTRIBUTE_COLOUR if non_attribute_reason(s.attr) else "tab:blue" if s.count > min_count
            else "lightgrey"
            for s in top
        ]  # fmt: skip
        ax.barh([s.attr for s in top][::-1], [s.count for s in top][::-1], color=colors[::-1])
        ax.axvline(min_count + 0.5, color="tab:red", ls="--", lw=1, label=f"cut: count > {min_count}")
        handles, _ = ax.get_legend_handles_labels()
        if NOT_ATTRIBUTE_COLOUR in colors:
            handles.append(Patch(color=NOT_ATTRIBUTE_COLOUR, label="not an attribute (left out)"))
        ax.legend(handles=handles, loc="lower right")
    ax.set(title=f"Top {len(top)} attributes by count", xlabel="occurrences", ylabel="attribute")
    fig.tight_layout()
    return fig


def top_attributes_table(stats: Sequence[AttributeStats], n: int = 15) -> pd.DataFrame:
    """The most frequent names with their variants and most common description."""
    return pd.DataFrame(
        [
            {"attr": s.attr, "count": s.count, "variants": ", ".join(s.variants[:4]),
             "most common description": s.top_description}
            for s in stats[:n]
        ],
        columns=["attr", "count", "variants", "most common description"],
    )  # fmt: skip


def per_domain_table(stats: Sequence[AttributeStats], domains: Sequence[str], n: int = 20) -> pd.DataFrame:
    """Occurrences of the ``n`` most frequent names in each domain's texts."""
    return pd.DataFrame(
        [{d: s.domains.get(d, 0) for d in domains} for s in stats[:n]],
        index=[s.attr for s in stats[:n]],
        columns=list(domains),
    )


def per_domain_heatmap(per_domain: pd.DataFrame) -> Figure:
    """The :func:`per_domain_table` as an annotated heat map."""
    domains = list(per_domain.columns)
    fig, ax = plt.subplots(figsize=(1.6 * len(domains) + 4, 0.3 * max(len(per_domain), 4) + 1.5))
    if len(per_domain):
        values = per_domain.to_numpy()
        im = ax.imshow(values, aspect="auto", cmap="Blues")
        ax.set_xticks(range(len(domains)), domains)
        ax.set_yticks(range(len(per_domain)), per_domain.index)
        for (i, j), v in pd.DataFrame(values).stack().items():
            color = "black" if v < values.max() / 2 else "white"
            ax.text(j, i, int(v), ha="center", va="center", fontsize=8, color=color)
        fig.colorbar(im, ax=ax, label="occurrences")
    ax.set(title="Top attributes per domain", xlabel="domain", ylabel="attribute")
    fig.tight_layout()
    return fig


def example_items(example: Enumeration, records: Sequence[ParsedAttribute]) -> pd.DataFrame:
    """One answer's items: the name as written, what it was normalised to, description and value."""
    names: dict[str, list[str]] = {}
    for r in records:
        if r.text_id == example.text_id and r.name not in names.setdefault(r.raw_name, []):
            names[r.raw_name].append(r.name)
    return pd.DataFrame(
        [
            {"name as written": i.name, "normalised": ", ".join(names.get(i.name, [])),
             "description": i.description, "value": i.value}
            for i in example.items
        ]
    )  # fmt: skip


def inventory_summary(
    records: Sequence[ParsedAttribute],
    stats: Sequence[AttributeStats],
    inventory: Sequence[AttributeStats],
    min_count: int,
) -> pd.DataFrame:
    """From occurrences to the inventory: occurrences, distinct names, the names that are not attributes
    (per reason, left out), the names kept and what they cover."""
    left_out = {
        f"names that are not attributes: {reason.replace('_', ' ')} (left out)": n
        for reason, n in non_attribute_counts(s.attr for s in stats).items()
    }
    return pd.Series(
        {
            "attribute occurrences (after normalisation)": len(records),
            "distinct normalised names": len(stats),
            **left_out,
            f"attributes seen more than {min_count} times (kept)": len(inventory),
            "occurrences covered by kept names": sum(s.count for s in inventory),
        },
        name="count",
    ).to_frame()


def attributes_per_text(enumerations: Sequence[Enumeration]) -> pd.DataFrame:
    """Named attributes per answer, described per domain."""
    per_text = pd.DataFrame(
        [{"domain": e.domain, "attributes": sum(1 for i in e.items if i.name)} for e in enumerations]
    )
    return per_text.groupby("domain")["attributes"].describe().round(1)


def example_heading(example: Enumeration | None, texts: Sequence[dict[str, Any]]) -> str:
    """Markdown naming the example answer's domain, text id and parse status, then quoting its text."""
    if example is None or not example.items:
        return "no answer produced any item"
    text = next(t["text"] for t in texts if t["text_id"] == example.text_id)
    return f"**{example.domain}** · `{example.text_id}` · {example.parse_status}\n\n> " + text.replace(
        "\n", " "
    )
