"""Stage 02 at the paper's scale: weighted AP = repeated points, target granularity, inventory formats.

The realistic inventory is hand-written (tests/data/attribute_groups.txt: 332 attribute names in 103
synonym groups) with the paper's Zipf-like counts: the names take ranks spread over the paper's 1,786
and count 8,350 / rank^0.9, floored at 11 (the paper keeps names seen more than 10 times). It is
embedded with the packaged MiniLM (stored in the kit cache after the first run).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.cluster import AffinityPropagation
from sklearn.metrics import adjusted_rand_score

from compeffdist_utils.clustering import cluster_file, cluster_inventory, extra_copies, similarity
from compeffdist_utils.clustering_report import preference_curve
from compeffdist_utils.config import ClusteringParams
from compeffdist_utils.inventory import InventoryEntry, load_inventory
from compeffdist_utils.weighted_ap import APFit, search_preference, weighted_affinity_propagation

GROUPS_FILE = Path(__file__).parent / "data" / "attribute_groups.txt"
# The near-synonyms the issue names, first in the file: they must share a cluster.
MUST_STAY_TOGETHER = 6


def read_groups() -> list[list[str]]:
    lines = GROUPS_FILE.read_text(encoding="utf-8").splitlines()
    return [[a.strip() for a in ln.split("|")] for ln in lines if ln.strip() and not ln.startswith("#")]


@pytest.fixture(scope="module")
def inventory(ci_params):
    """(entries, vectors, group id per entry) of the realistic inventory."""
    from compeffdist_utils.models import embed_texts

    groups = read_groups()
    names = [a for g in groups for a in g]
    rank = 1 + np.round(np.random.default_rng(0).permutation(len(names)) * 1785 / (len(names) - 1))
    counts = np.maximum(11, (8350 / rank**0.9).astype(int))
    entries = [InventoryEntry(attr=a, count=int(c)) for a, c in zip(names, counts, strict=True)]
    vectors = embed_texts(ci_params.models.embedder, names, ci_params)
    group_id = np.concatenate([[i] * len(g) for i, g in enumerate(groups)])
    return entries, vectors, group_id


def percentile_params(pct: float, **kw) -> ClusteringParams:
    return ClusteringParams(target_clusters=None, preference_percentile=pct, **kw)


def test_inventory_is_realistic(inventory):
    entries, vectors, group_id = inventory
    counts = np.array([e.count for e in entries])
    assert len(entries) >= 300 and len(set(e.attr for e in entries)) == len(entries)
    assert counts.max() == 8350 and counts.min() == 11 and np.median(counts) < 30  # long Zipf tail
    assert vectors.shape == (len(entries), 384)
    assert group_id.max() + 1 == 103


# -- the weighted formulation ----------------------------------------------------------------------------


def test_without_copies_it_is_exactly_scikit_learn(inventory):
    _, vectors, _ = inventory
    s = similarity(vectors[:150])
    for pct in (0.5, 50):
        pref = float(np.percentile(s, pct))
        ref = AffinityPropagation(affinity="precomputed", damping=0.9, preference=pref, random_state=42,
                                  max_iter=1000).fit(s.copy())  # fmt: skip
        fit = weighted_affinity_propagation(s, np.ones(150, dtype=int), pref)
        assert np.array_equal(fit.labels, ref.labels_)
        assert np.array_equal(fit.exemplars, ref.cluster_centers_indices_) and fit.n_iter == ref.n_iter_


def test_float32_halves_the_matrices_and_keeps_the_labels_where_there_are_no_ties(inventory):
    entries, vectors, _ = inventory
    s = similarity(vectors[:150])
    pref = float(np.percentile(s, 10))
    f64 = weighted_affinity_propagation(s, np.ones(150, dtype=int), pref)
    f32 = weighted_affinity_propagation(s, np.ones(150, dtype=int), pref, dtype=np.float32)
    assert adjusted_rand_score(f64.labels, f32.labels) >= 0.95
    # The float32 repeated-points fallback runs on the copies and reads the labels back per name.
    e, v = entries[:40], vectors[:40]
    m = 1 + extra_copies([x.count for x in e], True)
    r32 = cluster_inventory(e, v, percentile_params(10, ap_solver="repeated", ap_dtype="float32"))
    assert r32.n_fit_points == m.sum() and len(r32.labels) == 40 and min(r32.labels) >= 0


def net_similarity(exemplar_of: np.ndarray, s: np.ndarray, m: np.ndarray, preference: float) -> float:
    """AP's objective on the repeated set: every copy to its exemplar, one preference per exemplar."""
    return float(sum(preference if e == i else m[i] * s[i, e] for i, e in enumerate(exemplar_of)))


@pytest.mark.slow
def test_weighted_gives_the_repeated_points_clusters_at_the_paper_percentile(inventory):
    entries, vectors, _ = inventory
    weighted = cluster_inventory(entries, vectors, percentile_params(0.5))
    repeated = cluster_inventory(entries, vectors, percentile_params(0.5, ap_solver="repeated"))
    k_w, k_r = len(weighted.clusters), len(repeated.clusters)
    assert abs(k_w - k_r) <= 0.1 * k_r, (k_w, k_r)  # measured: 205 vs 191
    assert adjusted_rand_score(repeated.labels, weighted.labels) >= 0.9  # measured: 0.92
    assert weighted.n_fit_points == repeated.n_fit_points
    assert weighted.preference == repeated.preference  # percentile of the names' matrix in both
    # The naive alternative, row i of S (and its preference) times m_i, is not the weighting.
    m = 1 + extra_copies([e.count for e in entries], True)
    scaled = similarity(vectors) * m[:, None]
    naive = AffinityPropagation(affinity="precomputed", damping=0.9, max_iter=1000, random_state=42,
                                preference=weighted.preference * m).fit(scaled)  # fmt: skip
    assert adjusted_rand_score(repeated.labels, naive.labels_) < 0.9


def test_repeated_points_depend_on_the_seed_weighted_finds_a_better_objective(inventory):
    """Identical copies make the repeated run bistable; the weighted run is never worse on its objective."""
    entries, vectors, _ = inventory
    s = similarity(vectors[:120])
    m = 1 + extra_copies([e.count for e in entries[:120]], True)
    pref = float(np.percentile(s, 0.5))
    origin = np.concatenate([np.arange(120), np.repeat(np.arange(120), m - 1)])
    weighted = weighted_affinity_propagation(s, m, pref)
    best = net_similarity(weighted.exemplars[weighted.labels], s, m, pref)
    counts = []
    for seed in (42, 0):
        ap = AffinityPropagation(affinity="precomputed", damping=0.9, max_iter=1000, preference=pref,
                                 random_state=seed).fit(s[np.ix_(origin, origin)])  # fmt: skip
        labels, centres = ap.labels_[:120], ap.cluster_centers_indices_
        counts.append(len(set(labels)))
        assert net_similarity(origin[centres[labels]], s, m, pref) < best
    assert max(counts) > 2 * min(counts)  # measured: 32 and 4 clusters for seeds 42 and 0


# -- granularity -------------------------------------------------------------------------------------------


def test_target_granularity_keeps_synonyms_together_and_is_deterministic(inventory):
    entries, vectors, group_id = inventory
    cp = ClusteringParams(target_clusters=103)
    result = cluster_inventory(entries, vectors, cp)
    assert result.target_clusters == 103
    assert abs(len(result.clusters) - 103) <= round(0.05 * 103), len(result.clusters)
    labels = np.array(result.labels)
    for g in range(MUST_STAY_TOGETHER):
        members = [entries[i].attr for i in np.flatnonzero(group_id == g)]
        assert len(set(labels[group_id == g])) == 1, members
    # The search is recorded: one entry per AP run, the chosen preference among them.
    assert 2 <= len(result.search) <= cp.target_max_steps
    assert result.preference in [st["preference"] for st in result.search]
    assert all(st.keys() == {"preference", "n_clusters", "converged", "n_iter"} for st in result.search)
    again = cluster_inventory(entries, vectors.copy(), cp)
    assert again.model_dump() == result.model_dump()
    other_seed = cluster_inventory(entries, vectors, ClusteringParams(target_clusters=103, random_state=7))
    assert adjusted_rand_score(result.labels, other_seed.labels) > 0.9


def test_paper_percentile_on_minilm_leaves_synonyms_apart_the_target_does_not(inventory):
    """Why the target exists: the authors' 0.5 percentile (tuned on UAE-Large-V1) splits with MiniLM."""
    entries, vectors, _ = inventory
    paper = cluster_inventory(entries, vectors, percentile_params(0.5))
    assert len(paper.clusters) > 0.6 * len(entries)
    fraction = cluster_inventory(entries, vectors, ClusteringParams(target_clusters=0.1))
    assert fraction.target_clusters == round(0.1 * len(entries))
    assert abs(len(fraction.clusters) - fraction.target_clusters) <= 2


def test_search_bisects_the_preference_and_stops_on_a_jump():
    s = -np.array([[0.0, 1.0, 4.0], [1.0, 0.0, 2.0], [4.0, 2.0, 0.0]])

    def fake(count_at):
        def run(pref: float) -> APFit:
            k = count_at(pref)
            return APFit(np.zeros(3, dtype=int), np.arange(k), n_iter=10, converged=True)

        return run

    smooth = fake(lambda p: max(1, int(100 / -p)))  # more clusters as the preference rises
    pref, fit, steps = search_preference(smooth, s, 30, tolerance=0, max_steps=40)
    assert fit.exemplars.size == 30 and steps[0].preference == -4.0 and steps[0].n_clusters == 25
    assert len(steps) < 40
    jump = fake(lambda p: 10 if p < -2.5 else 50)
    pref, fit, steps = search_preference(jump, s, 30, tolerance=1, max_steps=40)
    assert len(steps) < 40 and fit.exemplars.size in (10, 50)


def test_target_validation():
    for bad in (0, 1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="target_clusters"):
            ClusteringParams(target_clusters=bad)
    assert ClusteringParams(target_clusters=None).target_clusters is None


# -- convergence is visible ----------------------------------------------------------------------------


def test_non_convergence_is_reported_with_what_to_change(inventory):
    entries, vectors, _ = inventory
    with pytest.warns(UserWarning, match="did not converge"):
        result = cluster_inventory(entries[:60], vectors[:60], percentile_params(50, max_iter=20))
    assert result.converged is False
    assert "Raise clustering.max_iter" in result.convergence_warning
    assert result.notes[0] == result.convergence_warning
    converged = cluster_inventory(entries[:60], vectors[:60], percentile_params(50))
    assert converged.converged and converged.convergence_warning is None


def test_preference_curve_draws_every_run(inventory):
    entries, vectors, _ = inventory
    result = cluster_inventory(entries[:60], vectors[:60], ClusteringParams(target_clusters=10))
    fig = preference_curve(result.search, result.target_clusters, result.preference)
    ax = fig.axes[0]
    assert len(ax.collections) == len(result.search)
    assert ax.get_xscale() == "log"


# -- inventories from elsewhere ------------------------------------------------------------------------


def test_every_inventory_format_reads_the_same(tmp_path, inventory):
    entries, _, _ = inventory
    first = entries[:5]
    authors = tmp_path / "attributes.json"  # the authors' release: pretty-printed array
    authors.write_text(json.dumps(
        [{"idx": i, "attr": e.attr, "attr_names": [e.attr, e.attr.upper()], "count": e.count}
         for i, e in enumerate(first)], indent=4))  # fmt: skip
    jl = tmp_path / "inventory.jsonl"
    jl.write_text("".join(json.dumps({"attr": e.attr, "count": e.count}) + "\n" for e in first))
    by_name = tmp_path / "inventory.csv"
    by_name.write_text("name,count\n" + "".join(f'"{e.attr}",{e.count}\n' for e in first))
    for path in (authors, jl, by_name):
        assert load_inventory(path) == first, path


def test_cluster_file_clusters_an_inventory_in_one_call(tmp_path, ci_params):
    path = tmp_path / "attributes.json"
    names = ["sarcasm", "sarcasm level", "value for money", "perceived value", "tone", "language tone"]
    path.write_text(json.dumps([{"idx": i, "attr": a, "attr_names": [a], "count": 50 - i}
                                for i, a in enumerate(names)], indent=4))  # fmt: skip
    result = cluster_file(path, params=ci_params, target_clusters=3)
    assert sorted(sorted(m.attr for m in c.attributes) for c in result.clusters) == [
        ["language tone", "tone"], ["perceived value", "value for money"], ["sarcasm", "sarcasm level"]
    ]  # fmt: skip
    with pytest.raises(ValueError, match="target_clusters"):
        cluster_file(path, params=ci_params, target_clusters=2.0)
