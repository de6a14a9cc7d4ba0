"""Stage 01's rule for names that are not sentiment attributes: counted per reason, left out of the inventory."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # the figure test reads the bars back

from compeffdist_utils.attributes import plots  # noqa: E402
from compeffdist_utils.attributes.inventory import ParsedAttribute, aggregate, frequency_cut  # noqa: E402
from compeffdist_utils.attributes.non_attributes import (  # noqa: E402
    non_attribute_counts,
    non_attribute_reason,
)
from compeffdist_utils.attributes.outputs import stage_notes  # noqa: E402

# Names a SmolLM2-135M teacher wrote in a tiny run, and what the rule makes of them.
NOT_ATTRIBUTES = {
    "sentence 1": "numbering",
    "attribute 3": "numbering",
    "item #2": "numbering",
    "more specific attributes": "prompt_scaffolding",
    "specifics of this text": "prompt_scaffolding",
    "attribute value": "prompt_scaffolding",
    "infographic": "media_or_layout",
    "bold font": "media_or_layout",
}
ATTRIBUTES = ["sentence structure", "formal description", "overall sentiment", "tone", "value for money",
              "emoji use", "sarcasm level 2", "reflections of other texts", "specificity"]  # fmt: skip


def test_names_without_a_word_about_the_text_are_not_attributes():
    assert {n: non_attribute_reason(n) for n in NOT_ATTRIBUTES} == NOT_ATTRIBUTES
    assert [n for n in ATTRIBUTES if non_attribute_reason(n)] == []


def _records(counts: dict[str, int]) -> list[ParsedAttribute]:
    return [
        ParsedAttribute(text_id=str(i), domain="imdb", name=name, raw_name=name, description="d", value="v")
        for name, c in counts.items()
        for i in range(c)
    ]


def test_the_cut_leaves_them_out_and_the_summary_and_record_count_them():
    records = _records({"tone": 5, "sentence 1": 4, "sentence 2": 1, "infographic": 3, "specifics": 2})
    stats = aggregate(records)
    inventory = frequency_cut(stats, 1)
    assert [s.attr for s in inventory] == ["tone"]  # frequent junk is left out whatever its count
    assert non_attribute_counts(s.attr for s in stats) == {
        "numbering": 2, "prompt_scaffolding": 1, "media_or_layout": 1,
    }  # fmt: skip
    summary = plots.inventory_summary(records, stats, inventory, 1)["count"]
    assert summary["names that are not attributes: numbering (left out)"] == 2
    assert summary["names that are not attributes: media or layout (left out)"] == 1
    assert summary["attributes seen more than 1 times (kept)"] == 1
    counts = {"parsed": 1, "partly": 0, "unparsed": 0, "items": 5, "complete_items": 5, "nameless_items": 0}
    notes = stage_notes(1, counts, records, stats, inventory, 1)
    assert notes["non_attribute_names"]["numbering"] == 2 and notes["n_kept"] == 1


def test_the_top_attributes_figure_marks_them():
    stats = aggregate(_records({"tone": 5, "infographic": 3, "rare": 1}))
    bars = plots.top_attributes(stats, min_count=1).axes[0].patches
    colours = {b.get_width(): b.get_facecolor() for b in bars}
    assert colours[3] == matplotlib.colors.to_rgba(plots.NOT_ATTRIBUTE_COLOUR)
    assert colours[5] == matplotlib.colors.to_rgba("tab:blue")
    assert colours[1] == matplotlib.colors.to_rgba("lightgrey")
    legend = plots.top_attributes(stats, min_count=1).axes[0].get_legend()
    swatch = dict(zip([t.get_text() for t in legend.get_texts()], legend.legend_handles, strict=True))
    assert swatch["not an attribute (left out)"].get_facecolor() == colours[3]
