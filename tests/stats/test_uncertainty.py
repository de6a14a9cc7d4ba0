"""Bootstrap intervals: each resample's score must equal the metric recomputed on the resampled examples,
intervals are seeded, differences are paired, and the plain-language verdicts follow the interval."""

from __future__ import annotations

import random

import numpy as np
import pytest

from compeffdist_utils.distillation_data.heldout_split import split_heldout
from compeffdist_utils.evaluation.heldout import agreement_stats
from compeffdist_utils.evaluation.significance import differences, prediction_stats, score_table
from compeffdist_utils.sentibench import BenchDataset, Example, TaskSpec
from compeffdist_utils.sentibench.metrics import Opinion, macro_f1, opener_f1, tuple_f1
from compeffdist_utils.stats import uncertainty as U


def _labels(n: int, seed: int, labels=("positive", "negative", "neutral")) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(labels) for _ in range(n)]


def _expand(counts: np.ndarray) -> list[int]:
    return [i for i, c in enumerate(counts) for _ in range(int(c))]


def test_macro_f1_resamples_equal_sklearn_on_the_resampled_examples():
    gold, pred = _labels(60, 1), _labels(60, 2, ("positive", "negative", "neutral", "mixed"))
    uids = [f"u{i}" for i in range(60)]
    st = U.metric_stats("ds", "macro_f1", uids, [(gold, pred)])
    assert U.point_score(st) == pytest.approx(100 * macro_f1(gold, pred))
    counts = U.resample_counts("ds", 60, 20)
    got = U.draws(st, 20)
    for b in range(20):
        idx = _expand(counts[b])
        assert got[b] == pytest.approx(100 * macro_f1([gold[i] for i in idx], [pred[i] for i in idx]))


def test_tuple_and_opener_resamples_equal_the_metrics():
    rng = random.Random(3)
    vocab = [("a", "pos"), ("b", "neg"), ("c", "pos"), ("d", "neu")]
    gold = [rng.sample(vocab, rng.randint(0, 2)) for _ in range(40)]
    pred = [rng.sample(vocab, rng.randint(0, 2)) for _ in range(40)]
    uids = [str(i) for i in range(40)]
    st = U.metric_stats("t", "tuple_f1", uids, [(gold, pred)])
    assert U.point_score(st) == pytest.approx(100 * tuple_f1(gold, pred)["f1"])

    def op(t: int, e: set[int], pol: str) -> Opinion:
        return Opinion(frozenset({-1}), frozenset({t}), frozenset(e), pol)

    g_ops = [[op(i % 3, {3, 4}, "pos")] if i % 4 else [] for i in range(40)]
    p_ops = [[op(i % 3, {4, 5} if i % 2 else {3, 4}, "pos" if i % 5 else "neg")] for i in range(40)]
    so = U.metric_stats("o", "opener_f1", uids, [(g_ops, p_ops)])
    assert U.point_score(so) == pytest.approx(100 * opener_f1(g_ops, p_ops)["f1"])
    counts, got = U.resample_counts("o", 40, 10), U.draws(so, 10)
    for b in range(10):
        idx = _expand(counts[b])
        want = opener_f1([g_ops[i] for i in idx], [p_ops[i] for i in idx])["f1"]
        assert got[b] == pytest.approx(100 * want)


def test_several_runs_average_like_the_reported_score():
    gold = _labels(30, 4)
    runs = [(gold, _labels(30, s)) for s in (5, 6, 7)]
    st = U.metric_stats("ds", "macro_f1", [str(i) for i in range(30)], runs)
    want = np.mean([100 * macro_f1(g, p) for g, p in runs])
    assert U.estimate(st).score == pytest.approx(want, abs=1e-3)


def test_resampling_the_runs_carries_their_spread_into_the_interval():
    """Demo draws that disagree (one run perfect, one at chance) must widen the interval; runs that agree
    must not; the point score is the plain mean over runs either way."""
    gold = _labels(200, 4)
    uids = [str(i) for i in range(200)]
    spread = U.metric_stats("ds", "macro_f1", uids, [(gold, gold), (gold, _labels(200, 5))])
    alike = U.metric_stats("ds", "macro_f1", uids, [(gold, gold), (gold, gold)])
    plain, both = U.estimate(spread), U.estimate(spread, resample_runs=True)
    assert both.score == plain.score
    assert both.high - both.low > 3 * (plain.high - plain.low)
    assert U.estimate(alike, resample_runs=True) == U.estimate(alike)
    d = U.compare(spread, spread, resample_runs=True)  # the same runs drawn for both sides: still paired
    assert (d.diff, d.low, d.high) == (0.0, 0.0, 0.0)


def test_intervals_are_seeded_and_cover_the_score():
    gold, pred = _labels(100, 8), _labels(100, 9)
    st = U.metric_stats("ds", "macro_f1", [str(i) for i in range(100)], [(gold, pred)])
    a, b, c = U.estimate(st, seed=1), U.estimate(st, seed=1), U.estimate(st, seed=2)
    assert a == b and (a.low, a.high) != (c.low, c.high)
    assert a.low < a.score < a.high and a.high - a.low > 5  # 100 noisy examples: a wide interval


def test_paired_difference_sees_a_small_consistent_effect_the_separate_intervals_miss():
    n = 200
    gold = _labels(n, 10, ("positive", "negative"))
    rng = random.Random(11)
    base = [g if rng.random() < 0.7 else ("negative" if g == "positive" else "positive") for g in gold]
    better = list(base)
    flipped = [i for i in range(n) if base[i] != gold[i]][:14]  # fix 14 of the base's errors, break none
    for i in flipped:
        better[i] = gold[i]
    uids = [str(i) for i in range(n)]
    sa = U.metric_stats("ds", "macro_f1", uids, [(gold, better)])
    sb = U.metric_stats("ds", "macro_f1", uids, [(gold, base)])
    ea, eb = U.estimate(sa), U.estimate(sb)
    assert ea.low < eb.high  # on their own, the two intervals overlap...
    d = U.compare(sa, sb, ("better", "base"))
    assert d.significant and d.better and d.low > 0  # ...but the paired difference excludes zero
    same = U.compare(sb, sb, ("base", "base"))
    assert (same.diff, same.low, same.high, same.significant) == (0.0, 0.0, 0.0, False)


def test_compare_refuses_different_examples():
    gold = _labels(10, 1)
    a = U.metric_stats("ds", "macro_f1", [str(i) for i in range(10)], [(gold, gold)])
    b = U.metric_stats("ds", "macro_f1", [f"x{i}" for i in range(10)], [(gold, gold)])
    with pytest.raises(ValueError, match="not scored on the same examples"):
        U.compare(a, b)


def test_loss_is_token_weighted_and_lower_is_better():
    st = U.loss_stats("heldout", ["a", "b"], [10.0, 2.0], [5, 1])
    assert U.point_score(st) == pytest.approx(2.0)
    worse = U.loss_stats("heldout", ["a", "b"], [20.0, 4.0], [5, 1])
    d = U.compare(st, worse, ("distilled", "base"))
    assert d.diff < 0 and d.better and not d.higher_is_better


def test_describe_differences_words_follow_the_interval():
    sig = U.Difference("distilled", "base", "sc/sst2", 3.2, 0.5, 6.0, 200)
    null = U.Difference("distilled", "base", "sc/imdb", 1.0, -2.0, 4.0, 200)
    lines = U.describe_differences([null, sig])
    assert "significant, the interval excludes zero; distilled is better" in lines[0]
    assert "not significant" in lines[1] and "cannot tell them apart" in lines[1]
    assert lines[-1].startswith("1 of 2 differences are significant")
    assert U.smoke_warning(8).startswith("SMOKE RUN") and U.smoke_warning(200) is None


def test_prediction_files_give_the_same_score_as_stage_07(tmp_path):
    spec = TaskSpec("sc/x", "basic", "classification", "macro_f1", "Classify.", ("negative", "positive"))
    gold = _labels(50, 12, ("positive", "negative"))
    ds = BenchDataset(spec, [Example(f"u{i}", f"s{i}", g) for i, g in enumerate(gold)], [], "sentibench")
    runs = {
        m: [{"uid": f"u{i}", "prediction": p} for i, p in enumerate(_labels(50, s, spec.labels))]
        for m, s in (("a", 1), ("b", 2))
    }
    per_model = {m: [prediction_stats(ds, [recs])] for m, recs in runs.items()}
    table = score_table(per_model)
    assert table.loc[table["model"] == "a", "score"].item() == pytest.approx(
        100 * macro_f1(gold, [r["prediction"] for r in runs["a"]]), abs=1e-3
    )
    (d,) = differences(per_model, "b")
    assert (d.a, d.b) == ("a", "b")


def test_heldout_split_is_seeded_disjoint_and_keeps_a_pool():
    recs = [{"sample_id": i} for i in range(20)]
    pool, held = split_heldout(recs, 5, seed=3)
    assert len(held) == 5 and len(pool) == 15
    assert {r["sample_id"] for r in pool}.isdisjoint(r["sample_id"] for r in held)
    assert split_heldout(recs, 5, seed=3) == (pool, held) and split_heldout(recs, 5, seed=4)[1] != held
    assert len(split_heldout(recs[:2], 5, seed=3)[0]) == 1  # never the whole pool


def test_agreement_with_the_teacher_counts_same_answers():
    teacher = [[{"uid": "a", "prediction": "Positive"}, {"uid": "b", "prediction": [{"x": "A#B"}]}]]
    model = [[{"uid": "b", "prediction": [{"x": "a b"}]}, {"uid": "a", "prediction": "negative"}]]
    st = agreement_stats("ds", model, teacher)
    assert U.point_score(st) == pytest.approx(50.0)
    with pytest.raises(ValueError, match="same examples"):
        agreement_stats("ds", [[{"uid": "z", "prediction": "x"}, {"uid": "a", "prediction": "x"}]], teacher)


def test_evaluation_uncertainty_reads_stage_07_files(tmp_path):
    from compeffdist_utils.core.io import write_jsonl
    from compeffdist_utils.evaluation.heldout import heldout_path
    from compeffdist_utils.evaluation.predictions import prediction_path
    from compeffdist_utils.evaluation.significance import evaluation_uncertainty, model_roles

    spec = TaskSpec("sc/x", "basic", "classification", "macro_f1", "Classify.", ("negative", "positive"))
    gold = _labels(40, 12, ("positive", "negative"))
    ds = BenchDataset(spec, [Example(f"u{i}", f"s{i}", g) for i, g in enumerate(gold)], [], "sentibench")
    models = {"base_student": "student", "distilled_student": "distilled", "teacher": "teacher"}
    for k, m in enumerate(models):
        for seed in (42, 52):
            preds = _labels(40, 100 * k + seed, spec.labels)
            recs = [{"uid": f"u{i}", "prediction": p} for i, p in enumerate(preds)]
            write_jsonl(prediction_path(tmp_path, m, "sc/x", seed), recs)
        nll = [{"sample_id": f"h{i}", "nll_sum": 10.0 - 2 * k + i % 3, "n_tokens": 5} for i in range(30)]
        write_jsonl(heldout_path(tmp_path, m), nll)
    reference, teacher = model_roles(models)
    assert (reference, teacher) == ("base_student", "teacher")
    unc = evaluation_uncertainty(tmp_path, list(models), [ds], [42, 52], reference, teacher)
    assert set(unc.scores["model"]) == set(models) and (unc.scores["ci_low"] <= unc.scores["score"]).all()
    assert set(unc.agreement["model"]) == {"base_student", "distilled_student"}
    assert list(unc.heldout["model"]) == list(models)
    held = unc.differences[unc.differences["measure"] == "held-out teacher-answer loss"]
    assert (
        held["significant"].all() and (held["difference"] < 0).all()
    )  # 2 nats less per 5 tokens, every sample
    assert unc.sentences[0].startswith("SMOKE RUN") and any(
        "distilled_student is better" in s for s in unc.sentences
    )


def _write_grid(tmp_path, rows, gold, quality):
    """Prediction and held-out files for grid ``rows``: each point right on ``quality[selector]`` of the
    examples; the base student's held-out loss above the trained points'."""
    from compeffdist_utils.core.io import write_jsonl
    from compeffdist_utils.evaluation.heldout import heldout_path
    from compeffdist_utils.evaluation.predictions import prediction_path

    for k, r in enumerate(rows):
        r["scores"] = {"sc/x": 50.0}
        r["mean_score"] = 50.0 + k
        if r.get("reused_from"):
            continue
        eval_dir = tmp_path / "efficiency" / "points" / r["point"] / "eval"
        rng = random.Random(k)
        preds = [
            g if rng.random() < quality[r["selector"]] else ("negative" if g == "positive" else "positive")
            for g in gold
        ]
        write_jsonl(
            prediction_path(eval_dir, r["point"], "sc/x", 42),
            [{"uid": f"u{i}", "prediction": p} for i, p in enumerate(preds)],
        )
        loss = 3.0 if r["selector"] == "base" else 2.0
        write_jsonl(
            heldout_path(eval_dir, r["point"]),
            [{"sample_id": f"h{i}", "nll_sum": loss * 4 + i % 2, "n_tokens": 4} for i in range(25)],
        )


def _grid_rows(selectors, budgets, seeds):
    rows = [{"point": "base__b0__s0", "selector": "base", "budget": 0.0, "seed": 0}]
    return rows + [
        {"point": f"{sel}__b{b:g}__s{seed}", "selector": sel, "budget": b, "seed": seed}
        for sel in selectors
        for b in budgets
        for seed in seeds
    ]


def _grid_dataset():
    spec = TaskSpec("sc/x", "basic", "classification", "macro_f1", "Classify.", ("negative", "positive"))
    gold = _labels(60, 12, ("positive", "negative"))
    return BenchDataset(
        spec, [Example(f"u{i}", f"s{i}", g) for i, g in enumerate(gold)], [], "sentibench"
    ), gold


def test_grid_uncertainty_pools_seeds_and_compares_rank_with_random(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from compeffdist_utils.data_efficiency.plots import plot_efficiency_ci
    from compeffdist_utils.data_efficiency.results import results_frame
    from compeffdist_utils.data_efficiency.uncertainty import grid_uncertainty

    ds, gold = _grid_dataset()
    rows = _grid_rows(("random", "rank_hard"), (0.1, 0.25), (1, 2))
    rows.append(
        {
            "point": "ifd__b0.25__s1",
            "selector": "ifd",
            "budget": 0.25,
            "seed": 1,
            "reused_from": "random__b0.25__s1",
        }
    )
    _write_grid(
        tmp_path, rows, gold, {"base": 0.6, "random": 0.6, "rank_hard": 0.9}
    )  # rank_hard clearly better
    unc = grid_uncertainty(tmp_path, rows, [ds], [42])
    t = unc.table.set_index(["selector", "budget"])
    assert (
        t.loc[("rank_hard", 0.1), "n"] == 60
        and t.loc[("rank_hard", 0.1), "ci_low"] < t.loc[("rank_hard", 0.1), "score"]
    )
    assert t.loc[("ifd", 0.25), "n"] == 60  # a reused point is read from its twin's folder
    rank_vs_random = unc.differences[unc.differences["model"] == "rank_hard"]
    assert len(rank_vs_random) == 2 and rank_vs_random["significant"].all()
    assert (t["heldout_loss"].drop(("base", 0.0)) < t.loc[("base", 0.0), "heldout_loss"]).all()
    fig = plot_efficiency_ci(unc.table, results_frame(rows))
    assert len(fig.axes) == 2


def test_grid_uncertainty_tests_the_claim_against_all_data_and_the_base(tmp_path):
    """Claim (b) of the paper: rank_hard at 10% against random at 10% and against all the data (here the
    only 100% point is random's: every selector keeps the whole pool there); and each against the base."""
    from compeffdist_utils.data_efficiency.uncertainty import grid_uncertainty

    ds, gold = _grid_dataset()
    rows = _grid_rows(("random",), (0.1, 1.0), (1, 2)) + _grid_rows(("rank_hard",), (0.1,), (1, 2))[1:]
    _write_grid(tmp_path, rows, gold, {"base": 0.5, "random": 0.7, "rank_hard": 0.95})
    diffs = grid_uncertainty(tmp_path, rows, [ds], [42], compare_budgets=(0.1,)).differences
    d = diffs[diffs["measure"] == "mean score"].set_index(["model", "versus"])
    # random @ 1 stands in for all the data; at 10% rank_hard is better than both (as constructed)
    assert d.loc[("rank_hard @ 0.1", "all data (@ 1)"), "difference"] > 0
    assert d.loc[("rank_hard @ 0.1", "base student"), "significant"]
    assert d.loc[("all data (@ 1)", "base student"), "difference"] > 0
    assert len(d) == 3
