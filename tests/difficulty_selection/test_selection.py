"""Budgeted selection: exact counts, soft expectations, stratification, rounding, seeds, bad budgets."""

from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest

from compeffdist_utils.core.config import SelectionParams
from compeffdist_utils.core.samples import SampleError, prepare_samples
from compeffdist_utils.difficulty_selection.selection import (
    SelectionError,
    group_of,
    select_samples,
    soft_keep_probs,
    stochastic_quotas,
    target_count,
)


def make_pool(group_sizes: list[int], seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Records in (cluster, task) groups of the given sizes, plus random distinct scores."""
    rng = np.random.default_rng(seed)
    records, scores = [], []
    for g, size in enumerate(group_sizes):
        for j in range(size):
            sid = f"g{g}-{j}"
            records.append(
                {
                    "sample_id": sid,
                    "cluster_id": g // 2,
                    "task_name": f"task{g % 2}",
                    "instruction": f"Do task {g} on text {j}.\n\nInput: text {j}",
                    "output": f"answer {g}-{j}",
                }
            )
            scores.append({"sample_id": sid, "rank": float(rng.random()), "length": int(rng.integers(1, 50))})
    return records, scores


def sel(**kw) -> SelectionParams:
    return SelectionParams(**kw)


# -- hard ---------------------------------------------------------------------------------------------
def test_hard_full_keeps_exactly_the_global_top():
    records, scores = make_pool([100, 100, 100])
    picked, summary = select_samples(records, scores, sel(method="hard", budget=0.1, stratify="full"))
    assert len(picked) == 30 == summary["n_selected"]
    best = sorted(scores, key=lambda s: -s["rank"])[:30]
    assert {p["sample_id"] for p in picked} == {s["sample_id"] for s in best}
    assert sorted(p["rank_in_group"] for p in picked) == list(range(1, 31))


@pytest.mark.parametrize("seed", range(20))
def test_hard_inprompt_exact_total_and_top_of_each_group(seed):
    sizes = [17, 23, 5, 41, 9, 30, 12]  # 137 samples; 0.2 of them is 27.4 -> 27 or 28
    records, scores = make_pool(sizes, seed)
    picked, summary = select_samples(records, scores, sel(method="hard", budget=0.2, seed=seed))
    assert len(picked) in (27, 28)
    by_group = Counter(p["group"] for p in picked)
    score_of = {s["sample_id"]: s["rank"] for s in scores}
    for row in summary["groups"]:
        # each quota is its expected share rounded down or up
        assert row["quota"] in (math.floor(row["expected"]), math.ceil(row["expected"]))
        assert by_group.get(row["group"], 0) == row["quota"]
        members = [r for r in records if group_of(r, "inprompt") == row["group"]]
        top = sorted(members, key=lambda r: -score_of[r["sample_id"]])[: row["quota"]]
        kept = {p["sample_id"] for p in picked if p["group"] == row["group"]}
        assert kept == {r["sample_id"] for r in top}


@pytest.mark.parametrize("budget,expected", [(0.1, 30), (0.5, 150), (1.0, 300), (25, 25), (299, 299)])
@pytest.mark.parametrize("stratify", ["inprompt", "full"])
def test_exact_counts_when_target_is_whole(budget, expected, stratify):
    records, scores = make_pool([37, 63, 100, 11, 89])  # 300, uneven groups: quotas are fractional
    for seed in range(5):
        picked, _ = select_samples(records, scores, sel(budget=budget, stratify=stratify, seed=seed))
        assert len(picked) == expected
        assert len({p["sample_id"] for p in picked}) == expected


def test_hard_ties_are_broken_by_seed_not_file_order():
    records, _ = make_pool([200])
    flat = [{"sample_id": r["sample_id"], "rank": 0.5} for r in records]
    picks = [
        {p["sample_id"] for p in select_samples(records, flat, sel(budget=0.1, seed=s))[0]} for s in range(3)
    ]
    assert all(len(p) == 20 for p in picks)
    assert picks[0] != picks[1] or picks[1] != picks[2]
    assert picks[0] != {r["sample_id"] for r in records[:20]}


# -- soft ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("peak", [1.0, 0.8, 0.5, 0.2])
@pytest.mark.parametrize("rate", [0.05, 0.1, 0.3, 0.7])
def test_soft_probabilities_average_to_the_rate(peak, rate):
    x = (np.arange(1, 1001) - 0.5) / 1000
    probs, b = soft_keep_probs(x, rate, peak)
    assert abs(probs.mean() - rate) < 1e-9
    assert np.all((probs >= 0) & (probs <= 1))
    # the continuum answer, b = 1/rate - 1, holds for any peak once the percentiles are dense
    assert b == pytest.approx(1 / rate - 1, rel=0.02)
    assert abs(x[np.argmax(probs)] - peak) <= 1e-3 + 1 / 1000


def test_soft_probability_shape():
    x = (np.arange(1, 101) - 0.5) / 100
    up, _ = soft_keep_probs(x, 0.2, 1.0)
    assert np.all(np.diff(up) > 0)  # a = 1: harder is always likelier
    mid, _ = soft_keep_probs(x, 0.2, 0.5)
    assert np.all(np.diff(mid[:50]) > 0) and np.all(np.diff(mid[50:]) < 0)


def test_soft_point_at_the_peak_stays_exact_in_expectation():
    probs, b = soft_keep_probs(np.array([0.5]), 0.1, 0.5)  # F(0.5) = 1 for every b
    assert math.isinf(b) and probs.mean() == pytest.approx(0.1)


@pytest.mark.parametrize("peak", [1.0, 0.6, 0.3])
@pytest.mark.parametrize("stratify", ["inprompt", "full"])
def test_soft_kept_fraction_over_many_seeds(peak, stratify):
    records, scores = make_pool([40, 25, 60, 35, 40])  # 200
    counts = [
        len(
            select_samples(
                records, scores, sel(method="soft", budget=0.15, soft_peak=peak, stratify=stratify, seed=s)
            )[0]
        )
        for s in range(300)
    ]
    # 30 expected; the sd of one draw is at most sqrt(30) ~ 5.5, so the mean of 300 is within ~0.3
    assert abs(np.mean(counts) - 30) < 1.2
    assert np.std(counts) > 0  # it is really stochastic


def test_soft_prefers_hard_samples_with_peak_one():
    records, scores = make_pool([500])
    score_of = {s["sample_id"]: s["rank"] for s in scores}
    kept = []
    for s in range(20):
        picked, _ = select_samples(records, scores, sel(method="soft", budget=0.1, seed=s))
        kept += [score_of[p["sample_id"]] for p in picked]
    assert np.mean(kept) > 0.75  # F = x^9 puts its mass on the top percentiles (mean x ~ 0.9)


# -- stratification, rounding ---------------------------------------------------------------------------
def test_inprompt_keeps_every_group():
    sizes = [10 + 3 * g for g in range(20)]
    records, scores = make_pool(sizes)
    for method in ("hard", "soft", "random"):
        picked, summary = select_samples(records, scores, sel(method=method, budget=0.3, seed=1))
        if method != "soft":  # quotas of at least 3 each
            assert summary["n_groups_selected"] == summary["n_groups"] == 20
        assert {p["group"] for p in picked} <= {row["group"] for row in summary["groups"]}
    full, summary = select_samples(records, scores, sel(budget=0.3, stratify="full"))
    assert summary["n_groups"] == 1 and {p["group"] for p in full} == {"all"}


def test_analysis_samples_are_grouped_by_prompt():
    base = {"cluster_id": 3, "task_name": "analysis", "output": "x"}
    a1 = {
        **base,
        "prompt": "Please analyze the tone.",
        "instruction": "Please analyze the tone.\n\nInput: t1",
    }
    a2 = {
        **base,
        "prompt": "Please analyze the tone.",
        "instruction": "Please analyze the tone.\n\nInput: t2",
    }
    b1 = {**base, "prompt": "How sarcastic is it?", "instruction": "How sarcastic is it?\n\nInput: t1"}
    no_prompt = {**base, "instruction": "How sarcastic is it?\n\nInput: t9"}
    task = {"cluster_id": 3, "task_name": "rating", "instruction": "Rate it.\n\nInput: t1", "output": "4"}
    g = [group_of(r, "inprompt") for r in (a1, a2, b1, no_prompt, task)]
    assert g[0] == g[1] != g[2] == g[3] and g[4] == "3/rating"
    assert group_of({"instruction": "i", "output": "o"}, "inprompt") == "-/-"


def test_stochastic_rounding_probabilities_and_exact_total():
    expected = [Fraction(3, 10), Fraction(7, 10), Fraction(3, 2), Fraction(5, 2)]  # sums to 5
    ups = np.zeros(4)
    n = 4000
    for seed in range(n):
        q = stochastic_quotas(expected, np.random.default_rng(seed))
        assert sum(q) == 5
        assert all(math.floor(e) <= v <= math.ceil(e) for v, e in zip(q, expected, strict=True))
        ups += [v > math.floor(e) for v, e in zip(q, expected, strict=True)]
    assert np.allclose(ups / n, [0.3, 0.7, 0.5, 0.5], atol=0.03)


def test_fractional_total_rounds_stochastically():
    totals = Counter(
        sum(stochastic_quotas([Fraction(5, 4)] * 2, np.random.default_rng(s))) for s in range(2000)
    )
    assert set(totals) == {2, 3} and abs(totals[3] / 2000 - 0.5) < 0.05  # 2.5 -> 2 or 3, half each


# -- seeds, score keys, missing data -------------------------------------------------------------------
@pytest.mark.parametrize("method", ["hard", "soft", "random"])
def test_determinism_per_seed(method):
    records, scores = make_pool([30, 50, 20])
    one = select_samples(records, scores, sel(method=method, budget=0.2, seed=7))
    two = select_samples(records, scores, sel(method=method, budget=0.2, seed=7))
    assert one == two
    if method != "hard":
        other = select_samples(records, scores, sel(method=method, budget=0.2, seed=8))
        assert [p["sample_id"] for p in one[0]] != [p["sample_id"] for p in other[0]]


def test_other_score_keys_and_random_without_scores():
    records, scores = make_pool([50, 50])
    by_len, summary = select_samples(records, scores, sel(score="length", budget=10, stratify="full"))
    lengths = sorted((s["length"] for s in scores), reverse=True)
    assert sorted((p["score"] for p in by_len), reverse=True) == lengths[:10]
    assert summary["score"] == "length"
    rand, _ = select_samples(records, None, sel(method="random", budget=0.1))
    assert len(rand) == 10 and all(p["score"] is None and p["rank_in_group"] is None for p in rand)
    with pytest.raises(SelectionError, match="needs the difficulty scores"):
        select_samples(records, None, sel(method="hard"))
    with pytest.raises(SelectionError, match="no 'ifd' field"):
        select_samples(records, scores, sel(score="ifd"))


def test_samples_without_a_score_are_left_out_and_counted():
    records, scores = make_pool([100])
    scores[0]["rank"] = None
    scores[1]["rank"] = float("nan")
    del scores[2]
    picked, summary = select_samples(records, scores, sel(budget=0.5, stratify="full"))
    assert summary["n_unscored"] == 3 and summary["n_pool"] == 97
    assert len(picked) in (48, 49)
    assert not {"g0-0", "g0-1", "g0-2"} & {p["sample_id"] for p in picked}


def test_records_without_ids_get_stable_ones():
    recs = [
        {"instruction": "a", "output": "b"},
        {"instruction": "a", "output": "b"},
        {"instruction": "c", "output": "d"},
    ]
    usable, skipped = prepare_samples(recs)
    ids = [r["sample_id"] for r in usable]
    assert len(set(ids)) == 3 and ids[1] == ids[0] + "-2" and not skipped
    assert [r["sample_id"] for r in prepare_samples(list(reversed(recs)))[0]][0] == ids[2]
    scores = [{"sample_id": i, "rank": float(k)} for k, i in enumerate(ids)]
    picked, _ = select_samples(recs, scores, sel(budget=1, stratify="full"))
    assert [p["sample_id"] for p in picked] == ids
    assert "sample_id" not in recs[0]  # the caller's records are not modified


def test_bad_records_are_reported():
    usable, skipped = prepare_samples(
        [{"instruction": "a", "output": " "}, {"output": "b"}, "x", {"instruction": "a", "output": "b"}]
    )
    assert len(usable) == 1 and [s["index"] for s in skipped] == [0, 1, 2]
    with pytest.raises(SampleError, match="3 record"):
        select_samples(
            [{"instruction": "a", "output": " "}, {"output": "b"}, "x"], None, sel(method="random")
        )
    with pytest.raises(SampleError, match="more than once"):
        prepare_samples(
            [
                {"sample_id": 1, "instruction": "a", "output": "b"},
                {"sample_id": "1", "instruction": "c", "output": "d"},
            ]
        )


# -- budgets ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "budget,match",
    [
        (0, "positive"),
        (-0.5, "positive"),
        (float("nan"), "positive"),
        (float("inf"), "positive"),
        (12.5, "must be whole"),
        (301, "exceeds the 300"),
    ],
)
def test_bad_budgets_give_clear_errors(budget, match):
    with pytest.raises(SelectionError, match=match):
        target_count(budget, 300)
    records, scores = make_pool([300])
    with pytest.raises(SelectionError, match=match):
        select_samples(
            records, scores, SelectionParams.model_construct(**{**sel().model_dump(), "budget": budget})
        )


def test_budget_forms():
    assert target_count(0.1, 300) == 30  # exactly, despite 0.1 * 300 != 30 in floats
    assert target_count(1, 300) == 300
    assert target_count(40, 300) == 40
    assert target_count(0.25, 10) == Fraction(5, 2)
