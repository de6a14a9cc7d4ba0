"""The per-stage drawing helpers the notebooks call, and ``Stage.show`` (save + show inline) in a real kernel."""

from __future__ import annotations

import base64

import matplotlib
import nbformat
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")  # the helpers draw; these tests only read the figures back

from compeffdist_utils.attributes import plots as attribute_report  # noqa: E402
from compeffdist_utils.attributes.enumeration import (  # noqa: E402
    AttributeStats,
    Enumeration,
    attribute_records,
    parse_answer,
    yield_counts,
)
from compeffdist_utils.clustering import plots as clustering_report  # noqa: E402
from compeffdist_utils.core.config import SelectionParams  # noqa: E402
from compeffdist_utils.difficulty_selection import plots as difficulty_report  # noqa: E402
from compeffdist_utils.difficulty_selection.selection import SCORE_KEYS  # noqa: E402
from compeffdist_utils.distillation_data import plots as distill_report  # noqa: E402
from compeffdist_utils.environment_and_corpus import plots as corpus_report  # noqa: E402
from compeffdist_utils.instructions import plots as instruction_report  # noqa: E402


def test_corpus_overview_counts_every_text():
    texts = pd.DataFrame(
        {"text": ["a b c", "d e", "f g h i", "j"], "domain": ["imdb", "imdb", "tweets", "tweets"]}
    )
    holdout = pd.DataFrame({"text": ["x"], "domain": ["imdb"]})
    fig = corpus_report.overview(texts, holdout)
    hist_total = sum(p.get_height() for p in fig.axes[0].patches)
    assert hist_total == len(texts)
    assert corpus_report.length_table(texts).loc["tweets", "max"] == 4


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


def test_cluster_views():
    from compeffdist_utils.clustering.cluster import InventoryEntry, cluster_inventory
    from compeffdist_utils.core.config import ClusteringParams

    rng = np.random.default_rng(0)
    vectors = np.concatenate([rng.normal(c, 0.01, size=(3, 4)) for c in (0, 5)])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    entries = [InventoryEntry(attr=f"a{i}", count=i + 1) for i in range(6)]
    result = cluster_inventory(entries, vectors, ClusteringParams(method="kmeans", n_clusters=2))
    overview = clustering_report.overview_table(result, len(entries))
    assert overview.loc["clusters", "value"] == 2 and overview.loc["attributes", "value"] == 6
    fig = clustering_report.cluster_sizes(result.clusters)
    assert sorted(p.get_height() for p in fig.axes[1].patches) == sorted(
        c.total_count for c in result.clusters
    )
    fig = clustering_report.attribute_map(vectors[:, :2], result.labels, entries, "pca")
    assert len(fig.axes[0].collections[0].get_offsets()) == 6 and len(fig.axes[0].texts) == 6


def test_instruction_funnel_and_pool():
    step = {"requests": 4, "answers_parsed": 3, "items_parsed": 9, "items_kept": 5, "dropped": {"echo": 4}}
    steps = {name: dict(step) for name in instruction_report.FUNNEL_STEPS}
    funnel_df, drops = instruction_report.funnel_tables(steps)
    assert funnel_df.loc["ideation", "items_kept"] == 5 and len(drops) == len(instruction_report.FUNNEL_STEPS)
    assert len(instruction_report.funnel_chart(funnel_df).axes[0].patches) == 4 * 5
    pool = [{"cluster_id": c, "task_type": t} for c, t in [(0, "analysis"), (0, "scoring"), (1, "analysis")]]
    assert instruction_report.pool_by_cluster(pool).loc[0].sum() == 2
    fig = instruction_report.pool_composition(pool)
    assert sorted(p.get_height() for p in fig.axes[0].patches) == [1, 2]


def test_distill_composition():
    df = pd.DataFrame(
        {"task_type": ["analysis", "scoring", "analysis"], "cluster_id": [0, 0, 1],
         "domain": ["imdb", "tweets", "imdb"], "answer_words": [10, 3, 12]}
    )  # fmt: skip
    fig = distill_report.composition(df)
    assert sorted(p.get_height() for p in fig.axes[0].patches) == [1, 2]


@pytest.fixture()
def scored():
    rng = np.random.default_rng(1)
    n = 12
    samples = [
        {"sample_id": f"s{i}", "instruction": f"Do task {i}", "output": f"answer {i}",
         "cluster_id": str(i % 3), "task_type": ["analysis", "scoring"][i % 2], "prompt_id": f"p{i % 3}"}
        for i in range(n)
    ]  # fmt: skip
    scores = [
        {"sample_id": f"s{i}", "rank": float(rng.uniform()), "ifd": float(rng.uniform(0.5, 2)),
         "ppl": float(rng.uniform(2, 50)), "length": int(rng.integers(1, 30))}
        for i in range(n)
    ]  # fmt: skip
    df = pd.DataFrame(samples).merge(pd.DataFrame(scores), on="sample_id")
    return samples, scores, df


def test_difficulty_views(scored):
    samples, scores, df = scored
    assert len(difficulty_report.score_distributions(df).axes) == len(SCORE_KEYS)
    clusters = difficulty_report.largest_clusters(df)
    assert set(clusters) == {"0", "1", "2"}
    assert len(difficulty_report.scores_by_group(df, "rank", clusters).axes) == 2
    assert difficulty_report.median_by_task_type(df)["samples"].sum() == len(df)
    corr = difficulty_report.spearman(df)
    assert np.allclose(np.diag(corr), 1.0)
    difficulty_report.scatter_matrix(df)
    easiest, hardest = difficulty_report.easiest_and_hardest(df, "rank")
    assert easiest["rank"].max() <= hardest["rank"].min() and len(easiest) == 3
    page = difficulty_report.side_by_side_html(easiest.assign(output="<b>x</b>"), hardest, "rank")
    assert "&lt;b&gt;x&lt;/b&gt;" in page  # sample texts are escaped
    tokens = pd.DataFrame({"token": ["a", "b"], "rank": [0, 9], "nucleus": [3, 3], "score": [0.0, 1.0]})
    fig = difficulty_report.token_scores([("easiest", easiest.iloc[0], tokens)])
    assert [p.get_height() for p in fig.axes[0].patches] == [0.0, 1.0]
    assert len(difficulty_report.soft_keep_curves(0.25, 0.5).axes[0].lines) == 4


def test_selection_views(scored):
    samples, scores, df = scored
    settings = SelectionParams(budget=0.5)
    overlap = difficulty_report.selector_overlap(samples, scores, settings)
    assert list(overlap.index) == [f"hard {k}" for k in SCORE_KEYS] + ["random"]
    assert np.allclose(np.diag(overlap), 1.0)
    sel = df.head(6)
    table = difficulty_report.composition_table(df, sel)
    assert table["pool"].sum() == 12 and table["selected"].sum() == 6
    fig = difficulty_report.selection_composition(df, sel, difficulty_report.largest_clusters(df))
    assert len(fig.axes) == 2
    difficulty_report.overlap_heatmap(overlap)


SHOW_CELL = """
import matplotlib.pyplot as plt
from compeffdist_utils.stage.stage import Stage
stage = Stage({name!r}, Params(), Path({run_dir!r}))
fig, ax = plt.subplots()
ax.plot([1, 2, 3])
stage.show(fig, "line")
stage.show(None, "nothing")
print(len(plt.get_fignums()))
"""


def test_show_saves_the_png_and_shows_exactly_it_inline(tmp_path):
    """In a real kernel with its default (inline) backend: one image output, the saved bytes, no twin."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    setup = "from pathlib import Path\nfrom compeffdist_utils.config import Params"
    nb.cells = [
        nbformat.v4.new_code_cell(setup),
        nbformat.v4.new_code_cell(SHOW_CELL.format(name="00_x", run_dir=str(tmp_path))),
    ]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = nb.cells[1].outputs
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1
    saved = (tmp_path / "figures" / "00_x_line.png").read_bytes()
    assert base64.b64decode(images[0]["data"]["image/png"]) == saved
    assert outputs[-1]["text"].strip() == "0"  # the figure is closed: nothing left open to draw twice
    assert not (tmp_path / "figures" / "00_x_nothing.png").exists()
