"""Stage 02: Affinity Propagation as the method states it, the alternatives, inventory input, edge cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from compeffdist_utils.clustering.cluster import (
    ClusteringError,
    assignment_records,
    cluster_inventory,
    extra_copies,
    project_2d,
    resolve_inventory,
)
from compeffdist_utils.clustering.inventory import InventoryEntry, InventoryError, load_inventory
from compeffdist_utils.clustering.plots import cluster_table, explorer_widget, interactive_frontend
from compeffdist_utils.core.config import ClusteringParams


def blobs(n_blobs=4, per_blob=5, dim=16, seed=0):
    """Well-separated unit vectors: ``n_blobs`` groups of ``per_blob`` names."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_blobs, dim))
    x = np.vstack([c + 0.1 * rng.normal(size=(per_blob, dim)) for c in centres])
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def entries_for(counts):
    return [InventoryEntry(attr=f"attr{i:02d}", count=int(c)) for i, c in enumerate(counts)]


def groups(result):
    """The partition as a set of frozensets of entry indices (independent of cluster numbering)."""
    out: dict[int, set[int]] = {}
    for i, lab in enumerate(result.labels):
        out.setdefault(lab, set()).add(i)
    return {frozenset(v) for v in out.values()}


BLOB_GROUPS = {frozenset(range(b * 5, b * 5 + 5)) for b in range(4)}
AP = ClusteringParams(preference_percentile=10.0, target_clusters=None)


# -- Affinity Propagation -----------------------------------------------------------------------------


def test_affinity_propagation_finds_the_blobs_and_is_deterministic():
    x = blobs()
    entries = entries_for(np.random.default_rng(1).integers(1, 100, size=20))
    first = cluster_inventory(entries, x, AP)
    second = cluster_inventory(entries, x.copy(), AP)
    assert groups(first) == BLOB_GROUPS
    assert first.converged and first.n_iter is not None and first.n_iter < AP.max_iter
    assert first.model_dump() == second.model_dump()


def test_a_fraction_of_a_small_inventory_is_raised_to_min_clusters():
    """0.1 of 20 names is 2 clusters; with min_clusters 4 the search aims at (and finds) the 4 blobs."""
    x, entries = blobs(), entries_for([5] * 20)
    plain = cluster_inventory(entries, x, ClusteringParams(target_clusters=0.1))
    assert plain.target_clusters == 2
    floored = cluster_inventory(entries, x, ClusteringParams(target_clusters=0.1, min_clusters=4))
    assert floored.target_clusters == 4 and groups(floored) == BLOB_GROUPS
    # Never more than there are names; an integer target is taken as given.
    few = cluster_inventory(entries[:3], x[:3], ClusteringParams(target_clusters=0.1, min_clusters=4))
    assert few.target_clusters == 3
    counted = cluster_inventory(entries, x, ClusteringParams(target_clusters=2, min_clusters=4))
    assert counted.target_clusters == 2


def test_extra_copies_are_int_log1p_of_the_count():
    assert extra_copies([0, 1, 2, 10, 8350], weighting=True).tolist() == [0, 0, 1, 2, 9]
    assert extra_copies([0, 1, 2, 10, 8350], weighting=False).tolist() == [0, 0, 0, 0, 0]
    x = blobs()
    counts = [1000] + [1] * 19
    assert cluster_inventory(entries_for(counts), x, AP).n_fit_points == 20 + 6
    unweighted = ClusteringParams(preference_percentile=10.0, target_clusters=None, frequency_weighting=False)
    assert cluster_inventory(entries_for(counts), x, unweighted).n_fit_points == 20


def test_frequency_weighting_makes_the_frequent_attribute_the_exemplar():
    # Three names on a line; without weights the middle one is the natural exemplar. Repeating the
    # frequent one int(log1p(1000)) = 6 extra times pulls the exemplar onto it.
    x = np.array([[0.0, 0.0], [0.5, 0.0], [1.0, 0.0]])
    entries = [InventoryEntry(attr="heavy", count=1000), InventoryEntry(attr="mid", count=1),
               InventoryEntry(attr="far", count=1)]  # fmt: skip
    low_pref = {"preference_percentile": 0.0, "target_clusters": None}
    plain = cluster_inventory(entries, x, ClusteringParams(frequency_weighting=False, **low_pref))
    weighted = cluster_inventory(entries, x, ClusteringParams(frequency_weighting=True, **low_pref))
    assert [c.exemplar for c in plain.clusters] == ["mid"]
    assert [c.exemplar for c in weighted.clusters] == ["heavy"]


def test_clusters_are_ordered_by_total_count_and_numbered_from_zero():
    x = blobs()
    # Blob 2 has the highest total, then blobs 0, 3 and 1.
    counts = [5] * 5 + [1] * 5 + [500] * 5 + [3] * 5
    result = cluster_inventory(entries_for(counts), x, ClusteringParams(method="kmeans", n_clusters=4))
    assert [c.cluster_id for c in result.clusters] == [0, 1, 2, 3]
    assert [c.total_count for c in result.clusters] == [2500, 25, 15, 5]
    assert result.labels[10:15] == [0] * 5 and result.labels[5:10] == [3] * 5
    for c in result.clusters:
        assert c.size == len(c.attributes) == 5
        member_counts = [m.count for m in c.attributes]
        assert member_counts == sorted(member_counts, reverse=True)
        assert c.exemplar in {m.attr for m in c.attributes}


def test_non_convergence_warns_and_is_reported():
    with pytest.warns(UserWarning, match="did not converge"):
        result = cluster_inventory(
            entries_for([3] * 20), blobs(), ClusteringParams(max_iter=10, damping=0.5, target_clusters=None)
        )
    assert result.converged is False
    assert any("did not converge" in n for n in result.notes)


def test_no_clusters_at_all_is_a_clear_error():
    with pytest.raises(ClusteringError, match="raise clustering.max_iter"):
        cluster_inventory(
            entries_for([3] * 20), blobs(), ClusteringParams(max_iter=5, damping=0.9, target_clusters=None)
        )


# -- alternatives ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["kmeans", "agglomerative"])
def test_alternative_methods(method):
    x = blobs()
    result = cluster_inventory(entries_for(range(20)), x, ClusteringParams(method=method, n_clusters=4))
    assert groups(result) == BLOB_GROUPS
    assert result.method == method
    totals = [c.total_count for c in result.clusters]
    assert totals == sorted(totals, reverse=True)


@pytest.mark.parametrize("method", ["kmeans", "agglomerative"])
def test_n_clusters_is_capped_at_the_number_of_attributes(method):
    result = cluster_inventory(entries_for([2, 3, 4]), blobs()[[0, 5, 10]], ClusteringParams(method=method))
    assert len(result.clusters) == 3
    assert any("capped" in n for n in result.notes)


# -- degenerate inputs ---------------------------------------------------------------------------------


def test_zero_attributes_is_an_error():
    with pytest.raises(ClusteringError, match="no attributes"):
        cluster_inventory([], np.zeros((0, 4)), AP)


@pytest.mark.parametrize("method", ["affinity", "kmeans", "agglomerative"])
def test_one_attribute_is_one_cluster(method):
    result = cluster_inventory(entries_for([7]), np.ones((1, 4)) / 2, ClusteringParams(method=method))
    assert result.labels == [0]
    assert [(c.size, c.total_count, c.exemplar) for c in result.clusters] == [(1, 7, "attr00")]


def test_vector_count_must_match():
    with pytest.raises(ValueError, match="3 vectors for 2 attributes"):
        cluster_inventory(entries_for([1, 2]), np.zeros((3, 4)), AP)


# -- inventory input ----------------------------------------------------------------------------------


def test_load_inventory_jsonl_and_csv(tmp_path):
    jl = tmp_path / "inv.jsonl"
    jl.write_text(
        json.dumps({"attr": "tone", "count": 12, "top_description": "how it sounds", "variants": ["Tone"]})
        + "\n\n"
        + json.dumps({"attr": "sarcasm", "count": 3.0})
        + "\n"
    )
    assert load_inventory(jl) == [
        InventoryEntry(attr="tone", count=12, top_description="how it sounds"),
        InventoryEntry(attr="sarcasm", count=3),
    ]
    csvf = tmp_path / "inv.csv"
    csvf.write_text("attr,count,extra\ntone,12,x\n sarcasm ,3,y\n")
    assert load_inventory(csvf) == [
        InventoryEntry(attr="tone", count=12),
        InventoryEntry(attr="sarcasm", count=3),
    ]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.csv", "label,count\ntone,3\n", r"missing column\(s\) \['attr'\]"),
        ("a.jsonl", '{"attr": "tone"}\n', r"a.jsonl:1: missing field\(s\) \['count'\]"),
        ("a.jsonl", '{"attr": "tone", "count": "many"}\n', "'count' must be a whole number"),
        ("a.csv", "attr,count\ntone,2.5\n", r"a.csv:2: 'count' must be a whole number >= 0"),
        ("a.csv", "attr,count\ntone,-1\n", "whole number >= 0"),
        ("a.csv", "attr,count\n,4\n", "empty 'attr'"),
        ("a.jsonl", '{"attr": "tone", "count": 1}\nnot json\n', "a.jsonl:2: not valid JSON"),
        ("a.jsonl", "[1, 2]\n", "item 0 of the array is not"),
        ("a.jsonl", "3\n", "expected a JSON object"),
        ("a.json", '[{"attr": "tone", "count": 1},\n', "a.json: not valid JSON"),
        (
            "a.json",
            '[{"idx": 0, "attr_names": ["tone"], "count": 1}]',
            r"a.json: item 0: missing field\(s\) \['attr'\]",
        ),
        ("a.csv", "attr,count\ntone,1\ntone,2\n", r"more than once: \['tone'\]"),
        ("a.parquet", "x", "unsupported inventory format"),
    ],
)
def test_load_inventory_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InventoryError, match=message):
        load_inventory(path)


def test_load_inventory_missing_file(tmp_path):
    with pytest.raises(InventoryError, match="not found"):
        load_inventory(tmp_path / "nope.jsonl")


def test_resolve_inventory_prefers_the_file_and_explains_empty_inputs(tmp_path):
    stage01 = tmp_path / "run" / "attributes" / "inventory.jsonl"
    stage01.parent.mkdir(parents=True)
    stage01.write_text("")
    with pytest.raises(ClusteringError, match=r"stage 01 kept no attributes.*min_count=10.*Lower"):
        resolve_inventory(ClusteringParams(), stage01, tmp_path, min_count=10)
    (tmp_path / "mine.csv").write_text("attr,count\ntone,4\n")
    entries, source = resolve_inventory(ClusteringParams(inventory_file="mine.csv"), stage01, tmp_path, 10)
    assert entries == [InventoryEntry(attr="tone", count=4)] and source == str(tmp_path / "mine.csv")
    (tmp_path / "empty.csv").write_text("attr,count\n")
    with pytest.raises(ClusteringError, match="holds no attributes"):
        resolve_inventory(ClusteringParams(inventory_file="empty.csv"), stage01, tmp_path, 10)
    with pytest.raises(FileNotFoundError, match="run stage 01 first"):
        resolve_inventory(ClusteringParams(), tmp_path / "missing.jsonl", tmp_path, 10)


# -- map and records -----------------------------------------------------------------------------------


def test_projection_pca_and_tiny_fallback():
    x = blobs()
    xy, used = project_2d(x, "pca", seed=0)
    assert used == "pca" and xy.shape == (20, 2)
    xy3, used3 = project_2d(x[:3], "umap", seed=0)
    assert used3.startswith("pca") and xy3.shape == (3, 2)
    xy1, _ = project_2d(x[:1], "umap", seed=0)
    assert xy1.tolist() == [[0.0, 0.0]]


@pytest.mark.slow
def test_umap_map_is_seeded_and_reused_from_the_cache(tmp_path, monkeypatch):
    import umap

    x = blobs()
    xy, used = project_2d(x, "umap", seed=42, cache_dir=tmp_path)
    assert used == "umap" and xy.shape == (20, 2) and np.isfinite(xy).all()

    def no_fit(*args, **kwargs):
        raise AssertionError("UMAP was fitted again although the map was cached")

    monkeypatch.setattr(umap, "UMAP", no_fit)
    again, _ = project_2d(x, "umap", seed=42, cache_dir=tmp_path)
    assert np.array_equal(again, xy)
    with pytest.raises(AssertionError, match="fitted again"):
        project_2d(x, "umap", seed=43, cache_dir=tmp_path)


def test_assignment_records_and_table():
    entries = entries_for([5, 1, 4])
    result = cluster_inventory(entries, blobs()[[0, 1, 10]], ClusteringParams(method="kmeans", n_clusters=2))
    recs = assignment_records(entries, result, np.arange(6.0).reshape(3, 2))
    assert [(r["attr"], r["count"], r["x"], r["y"]) for r in recs] == [
        ("attr00", 5, 0.0, 1.0),
        ("attr01", 1, 2.0, 3.0),
        ("attr02", 4, 4.0, 5.0),
    ]
    assert recs[0]["cluster_id"] == recs[1]["cluster_id"] == 0  # blob 0 holds 6 of the 10 mentions
    table = cluster_table(result.clusters)
    assert list(table.index) == [0, 1] and table.loc[0, "total_count"] == 6


def test_explorer_widget_lists_every_cluster_and_headless_is_detected(monkeypatch):
    result = cluster_inventory(
        entries_for(range(20)), blobs(), ClusteringParams(method="kmeans", n_clusters=4)
    )
    widget = explorer_widget(result.clusters)
    dropdown = widget.children[0]
    assert [label.split(":")[0] for label, _ in dropdown.options] == ["0", "1", "2", "3"]
    assert interactive_frontend() is False  # pytest is not a Jupyter kernel
    monkeypatch.setenv("JPY_SESSION_NAME", "x.ipynb")
    assert interactive_frontend() is False  # still not a kernel, whatever the environment says


# -- with the real embedder ----------------------------------------------------------------------------


@pytest.mark.slow
def test_real_embedder_groups_paraphrased_attribute_names(ci_params):
    from compeffdist_utils.models import embed_texts

    names = ["overall sentiment", "sentiment polarity", "sarcasm", "sarcasm level",
             "value for money", "perceived value"]  # fmt: skip
    vectors = embed_texts(ci_params.models.embedder, names, ci_params)
    assert vectors.shape == (6, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    result = cluster_inventory(
        entries_for([50, 10, 40, 5, 30, 8]), vectors, ClusteringParams(method="agglomerative", n_clusters=3)
    )
    assert groups(result) == {frozenset({0, 1}), frozenset({2, 3}), frozenset({4, 5})}
    # AP at a requested granularity (the preference search) keeps every paraphrase pair together.
    ap = cluster_inventory(entries_for([50, 10, 40, 5, 30, 8]), vectors, ClusteringParams(target_clusters=3))
    assert groups(ap) == {frozenset({0, 1}), frozenset({2, 3}), frozenset({4, 5})}
