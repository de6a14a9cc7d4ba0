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

from compeffdist_utils.clustering.cluster import cluster_file, cluster_inventory, extra_copies, similarity
from compeffdist_utils.clustering.inventory import InventoryEntry, load_inventory
from compeffdist_utils.clustering.plots import preference_curve
from compeffdist_utils.clustering.weighted_ap import APFit, search_preference, weighted_affinity_propagation
from compeffdist_utils.core.config import ClusteringParams

GROUPS_FILE = Path(__file__).parents[1] / "data" / "attribute_groups.txt"
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
    # Computed afresh, not read from the shared kit cache, which another environment may have written.
    vectors = embed_texts(ci_params.models.embedder, names, ci_params, use_cache=False)
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


def test_without_copies_it_agrees_with_scikit_learn(inventory):
    """Same procedure as scikit-learn's: where there are no ties the labels agree.

    Not bit-identity: the availabilities are summed in another order, and BLAS / numpy versions may
    round the last bit differently, so a near-tie may go either way.
    """
    _, vectors, _ = inventory
    s = similarity(vectors[:150])
    for pct in (0.5, 50):
        pref = float(np.percentile(s, pct))
        ref = AffinityPropagation(affinity="precomputed", damping=0.9, preference=pref, random_state=42,
                                  max_iter=1000).fit(s.copy())  # fmt: skip
        fit = weighted_affinity_propagation(s, np.ones(150, dtype=int), pref)
        assert fit.converged
        assert adjusted_rand_score(ref.labels_, fit.labels) >= 0.95, pct
        assert abs(fit.exemplars.size - ref.cluster_centers_indices_.size) <= 0.05 * fit.exemplars.size


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


def repeated_objectives(s: np.ndarray, m: np.ndarray, pref: float, seeds=(42, 0, 7)) -> list[float]:
    """The objective that scikit-learn's AP on the repeated copies reaches, one value per seed."""
    n = len(m)
    origin = np.concatenate([np.arange(n), np.repeat(np.arange(n), m - 1)])
    values = []
    for seed in seeds:
        ap = AffinityPropagation(affinity="precomputed", damping=0.9, max_iter=1000, preference=pref,
                                 random_state=seed).fit(s[np.ix_(origin, origin)])  # fmt: skip
        if ap.cluster_centers_indices_.size:  # scikit-learn gives no exemplar when it does not converge
            labels, centres = ap.labels_[:n], ap.cluster_centers_indices_
            values.append(net_similarity(origin[centres[labels]], s, m, pref))
    return values


def result_objective(result, entries, s: np.ndarray, m: np.ndarray, pref: float) -> float:
    """The repeated set's objective of a stage-02 result (clusters name their exemplar)."""
    index = {e.attr: i for i, e in enumerate(entries)}
    exemplar = {c.cluster_id: index[c.exemplar] for c in result.clusters}
    return net_similarity(np.array([exemplar[label] for label in result.labels]), s, m, pref)


# The repeated copies tie with each other; which way scikit-learn's run breaks those ties moves with
# the last bit of its sums (seed, BLAS, numpy version): on the 120 names at percentile 0.5 it gave 32
# and 4 clusters for seeds 42 and 0 on one machine, 33 and 33 on another, and on all 332 names seed 42
# collapsed to 1 cluster where seed 0 gave 190 (weighted_ap.py records these). So the tests compare
# what every run is for, the objective, with a 2% margin, and never a cluster count of the repeated run.
OBJECTIVE_MARGIN = 0.02


def test_weighted_reaches_at_least_the_repeated_points_objective(inventory):
    """Weighted AP solves the repeated-points problem: its objective is never worse than the copies'."""
    entries, vectors, _ = inventory
    s = similarity(vectors[:120])
    m = 1 + extra_copies([e.count for e in entries[:120]], True)
    pref = float(np.percentile(s, 0.5))
    weighted = weighted_affinity_propagation(s, m, pref)
    assert weighted.converged
    best = net_similarity(weighted.exemplars[weighted.labels], s, m, pref)
    for value in repeated_objectives(s, m, pref):
        assert best >= value - OBJECTIVE_MARGIN * abs(best), (best, value)
    # Leaving the multiplicities out is not the weighting: it loses on the repeated set's objective.
    plain = weighted_affinity_propagation(s, np.ones(120, dtype=int), pref)
    assert net_similarity(plain.exemplars[plain.labels], s, m, pref) < best - OBJECTIVE_MARGIN * abs(best)


@pytest.mark.slow
def test_weighted_at_the_paper_percentile_on_the_whole_inventory(inventory):
    entries, vectors, _ = inventory
    weighted = cluster_inventory(entries, vectors, percentile_params(0.5))
    repeated = cluster_inventory(entries, vectors, percentile_params(0.5, ap_solver="repeated"))
    assert weighted.n_fit_points == repeated.n_fit_points
    assert weighted.preference == repeated.preference  # percentile of the names' matrix in both
    s, pref = similarity(vectors), weighted.preference
    m = 1 + extra_copies([e.count for e in entries], True)
    best = result_objective(weighted, entries, s, m, pref)
    if repeated.converged:  # a collapsed repeated run (1 cluster, seen) is far worse; a failed one has none
        assert best >= result_objective(repeated, entries, s, m, pref) - OBJECTIVE_MARGIN * abs(best)
    # The naive alternative, row i of S (and its preference) times m_i, is not the weighting.
    naive = AffinityPropagation(affinity="precomputed", damping=0.9, max_iter=1000, random_state=42,
                                preference=pref * m).fit(s * m[:, None])  # fmt: skip
    if naive.cluster_centers_indices_.size:
        naive_value = net_similarity(naive.cluster_centers_indices_[naive.labels_], s, m, pref)
        assert naive_value < best - 0.1 * abs(best)  # measured: -843 against -573


# -- granularity -------------------------------------------------------------------------------------------


def test_target_granularity_keeps_synonyms_together_and_is_deterministic(inventory):
    entries, vectors, group_id = inventory
    cp = ClusteringParams(target_clusters=103)
    result = cluster_inventory(entries, vectors, cp)
    assert result.target_clusters == 103
    assert_search_reached(result, cp)
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


def assert_search_reached(result, cp: ClusteringParams) -> None:
    """The count is within the tolerance, or the search shows it jumped over the target.

    AP's count is a step function of the preference: where it jumps over the target between two
    preferences 0.1% apart, no preference gives the target, and the search ends on the closest count.
    """
    target, k = result.target_clusters, len(result.clusters)
    tolerance = round(cp.target_tolerance * target)
    counts = [st["n_clusters"] for st in result.search]
    assert abs(k - target) == min(abs(c - target) for c in counts)  # the closest count was kept
    if abs(k - target) <= tolerance:
        return
    below = max((st for st in result.search if st["n_clusters"] < target), key=lambda st: st["preference"])
    above = min((st for st in result.search if st["n_clusters"] > target), key=lambda st: st["preference"])
    jumped = below["preference"] / above["preference"] <= 1 + 1.5e-3
    assert jumped or len(result.search) >= cp.target_max_steps, (k, target, result.search)


def test_paper_percentile_on_minilm_leaves_synonyms_apart_the_target_does_not(inventory):
    """Why the target exists: the authors' 0.5 percentile (tuned on UAE-Large-V1) splits with MiniLM."""
    entries, vectors, group_id = inventory
    paper = cluster_inventory(entries, vectors, percentile_params(0.5))
    n_groups = int(group_id.max()) + 1  # 103 synonym groups: the granularity a reader expects
    assert len(paper.clusters) > 1.5 * n_groups  # measured: 205 clusters
    fraction = cluster_inventory(entries, vectors, ClusteringParams(target_clusters=0.1))
    assert fraction.target_clusters == round(0.1 * len(entries))
    assert_search_reached(fraction, ClusteringParams(target_clusters=0.1))


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
