"""Stage figures and tables: the drawing helpers of compeffdist_utils.attributes.plots, read back from what they draw."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # the helpers draw; these tests only read the figures back

from compeffdist_utils.attributes import plots as attribute_report  # noqa: E402
from compeffdist_utils.attributes.enumeration import Enumeration, best_example, yield_counts  # noqa: E402
from compeffdist_utils.attributes.inventory import AttributeStats, attribute_records  # noqa: E402
from compeffdist_utils.attributes.parsing import parse_answer  # noqa: E402


def _stats(counts: dict[str, int]) -> list[AttributeStats]:
    return [
        AttributeStats(
            attr=a,
            count=c,
            variants=[a],
            descriptions=["d"],
            values=["v"],
            top_description="d",
            domains={"imdb": c},
        )  # fmt: skip
        for a, c in counts.items()
    ]


def test_top_attributes_colours_what_the_cut_keeps():
    stats = _stats({"tone": 5, "sarcasm": 3, "rare": 1})
    fig = attribute_report.top_attributes(stats, min_count=2)
    bars = fig.axes[0].patches
    widths = [b.get_width() for b in bars]
    assert widths == [1, 3, 5]  # drawn bottom-up: the most frequent on top
    grey = matplotlib.colors.to_rgba("lightgrey")
    assert [b.get_facecolor() == grey for b in bars] == [True, False, False]
    table = attribute_report.per_domain_table(stats, ["imdb", "tweets"])
    assert table.loc["tone"].tolist() == [5, 0]
    assert len(attribute_report.per_domain_heatmap(table).axes) == 2  # the map and its colour bar


def test_yield_and_example_tables_from_real_parses():
    answer = "1. **Tone**: Attribute Description - the mood. Attribute Value - upbeat."
    items = parse_answer(answer).items
    enum = Enumeration(text_id="t1", domain="imdb", response=answer, parse_status="parsed",
                       n_items=len(items), n_complete=sum(i.complete for i in items), items=items)  # fmt: skip
    counts = yield_counts([enum])
    table = attribute_report.yield_table([enum], counts)
    assert table.loc["total", "answers"] == 1 and table.loc["parsed", "share"] == 1.0
    assert attribute_report.answer_examples([enum]).index.tolist() == ["parsed"]
    records = attribute_records("t1", "imdb", enum.items)
    items = attribute_report.example_items(enum, records)
    assert items.loc[0, "normalised"] == "tone" and items.loc[0, "value"]


def test_inventory_summary_and_the_example_shown():
    answer = "1. **Tone**: Attribute Description - the voice. Attribute Value - warm.\n2. **Irony**: yes"
    items = parse_answer(answer).items
    e = Enumeration(text_id="t1", domain="imdb", response=answer, parse_status="partly", n_items=2,
                    n_complete=1, items=items)  # fmt: skip
    records = attribute_records(e.text_id, e.domain, e.items)
    stats = _stats({"tone": 3, "irony": 1})
    summary = attribute_report.inventory_summary(records, stats, stats[:1], 1)
    assert summary["count"].tolist() == [2, 2, 0, 0, 0, 1, 3]  # no name here is a non-attribute
    assert best_example([e]) is e and best_example([]) is None
    heading = attribute_report.example_heading(e, [{"text_id": "t1", "text": "so\nwarm"}])
    assert heading.endswith("> so warm") and "`t1`" in heading
    assert attribute_report.example_heading(None, []) == "no answer produced any item"
    assert attribute_report.attributes_per_text([e]).loc["imdb", "mean"] == 2
