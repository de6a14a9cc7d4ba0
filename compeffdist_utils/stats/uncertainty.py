"""95% bootstrap confidence intervals for every score, and paired differences that say whether they are
significant.

Why: with a few hundred test examples a macro-F1 moves by several points when the examples change, so a
table of bare scores invites reading noise as effect. Every score here comes with the interval of its
percentile bootstrap over test examples.

How:
- Each measure is reduced to per-example statistics whose SUMS determine the score (:class:`Stats`):
  macro-F1 from one-hot gold / predicted / correct counts per label, micro tuple-F1 from (true
  positives, predicted, gold), OpeNER's sentiment F1 from (precision weight, recall weight, predicted,
  gold), an agreement rate from (agree, 1), a token-level loss from (summed NLL, tokens). A resample is a
  vector of multinomial counts over the examples, so 1,000 resamples are one matrix product.
- The resamples are seeded by (seed, measure name, number of examples) only. Two models evaluated on the
  same examples of a dataset therefore see the SAME resamples, so their difference is a paired bootstrap
  and its interval is much narrower than that of the two scores on their own.
- Several runs of one model on the same examples (evaluation demo seeds, grid seeds) are an extra axis:
  each resample scores every run and averages them, as the reported score does.
- A mean over datasets (the "overall" score) averages the per-dataset resamples; datasets are resampled
  independently, as they are independent samples.
- A difference is called significant when its 95% interval excludes zero. Nothing corrects for the many
  comparisons a grid makes; :func:`describe_differences` says so.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from compeffdist_utils.sentibench.metrics import normalise_label, opener_f1, tuple_f1

N_BOOT = 1000
LEVEL = 0.95
Kind = Literal["macro_f1", "tuple_f1", "opener_f1", "mean", "ratio"]


@dataclass(frozen=True)
class Stats:
    """Per-example statistics of one measure: ``values[run, example, stat]``, examples named by ``uids``.

    ``name`` seeds the resamples (use the dataset name, so every model of a dataset shares them).
    """

    name: str
    kind: Kind
    uids: tuple[str, ...]
    values: np.ndarray
    scale: float = 100.0  # scores are reported x100 (F1, agreement in %); a loss keeps scale 1
    higher_is_better: bool = True

    def __post_init__(self) -> None:
        if self.values.ndim != 3 or self.values.shape[1] != len(self.uids):
            raise ValueError(f"{self.name}: values must be (runs, {len(self.uids)} examples, stats)")
        if not self.uids:
            raise ValueError(f"{self.name}: no examples to bootstrap")


@dataclass(frozen=True)
class Estimate:
    score: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class Difference:
    """``a`` minus ``b`` with its paired interval; ``better`` says whether the sign favours ``a``."""

    a: str
    b: str
    measure: str
    diff: float
    low: float
    high: float
    n: int
    higher_is_better: bool = True

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0

    @property
    def better(self) -> bool:
        return (self.diff > 0) == self.higher_is_better


# -- per-example statistics ---------------------------------------------------------------------------------


def metric_stats(
    name: str, metric: str, uids: Sequence[str], gold_pred_by_run: Sequence[tuple[Sequence, Sequence]]
) -> Stats:
    """Statistics of a SentiBench metric from (gold, pred) per run, each as ``evaluation.metric_inputs``
    returns them (labels for macro-F1, tuples for tuple-F1, opinions for OpeNER)."""
    if metric == "macro_f1":
        labels = sorted({normalise_label(x) for gold, pred in gold_pred_by_run for x in (*gold, *pred)})
        col = {lab: i for i, lab in enumerate(labels)}
        k = len(labels)
        values = np.zeros((len(gold_pred_by_run), len(uids), 3 * k))
        for r, (gold, pred) in enumerate(gold_pred_by_run):
            for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
                gi, pi = col[normalise_label(g)], col[normalise_label(p)]
                values[r, i, gi] += 1
                values[r, i, k + pi] += 1
                values[r, i, 2 * k + gi] += gi == pi
        return Stats(name, "macro_f1", tuple(uids), values)
    rows = []
    for gold, pred in gold_pred_by_run:
        run = []
        for g, p in zip(gold, pred, strict=True):
            if metric == "tuple_f1":
                f = tuple_f1([g], [p])
                run.append([round(f["precision"] * f["n_pred"]), f["n_pred"], f["n_gold"]])
            else:
                f = opener_f1([g], [p])
                run.append(
                    [f["precision"] * f["n_pred"], f["recall"] * f["n_gold"], f["n_pred"], f["n_gold"]]
                )
        rows.append(run)
    kind: Kind = "tuple_f1" if metric == "tuple_f1" else "opener_f1"
    return Stats(name, kind, tuple(uids), np.asarray(rows, dtype=float))


def rate_stats(name: str, uids: Sequence[str], hits_by_run: Sequence[Sequence[bool]]) -> Stats:
    """A share in % (e.g. agreement with the teacher) from one 0/1 per example and run."""
    hits = np.asarray(hits_by_run, dtype=float)
    return Stats(name, "mean", tuple(uids), np.stack([hits, np.ones_like(hits)], axis=-1))


def loss_stats(name: str, uids: Sequence[str], nll_sums: Sequence[float], n_tokens: Sequence[int]) -> Stats:
    """Mean token loss (summed NLL / tokens, lower is better) from one sample per uid."""
    values = np.stack([np.asarray(nll_sums, float), np.asarray(n_tokens, float)], axis=-1)[None]
    return Stats(name, "ratio", tuple(uids), values, scale=1.0, higher_is_better=False)


# -- scores from sums ---------------------------------------------------------------------------------------


def _from_sums(kind: Kind, s: np.ndarray) -> np.ndarray:
    """The score (in [0, 1], a loss as is) of statistic sums ``s[..., stat]``, vectorised over the rest."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "macro_f1":
            k = s.shape[-1] // 3
            gold, pred, tp = s[..., :k], s[..., k : 2 * k], s[..., 2 * k :]
            present = (gold + pred) > 0  # a label absent from gold and predictions has no F1
            f1 = np.where(present, 2 * tp / np.where(present, gold + pred, 1), 0.0)
            return f1.sum(-1) / np.maximum(present.sum(-1), 1)
        if kind == "tuple_f1":
            tp, n_pred, n_gold = s[..., 0], s[..., 1], s[..., 2]
            both = n_pred + n_gold
            return np.where(both == 0, 1.0, 2 * tp / np.where(both == 0, 1, both))
        if kind == "opener_f1":
            wp, wr, n_pred, n_gold = (s[..., i] for i in range(4))
            p = np.where(n_pred > 0, wp / np.where(n_pred > 0, n_pred, 1), 0.0)
            r = np.where(n_gold > 0, wr / np.where(n_gold > 0, n_gold, 1), 0.0)
            f1 = np.where(p + r > 0, 2 * p * r / np.where(p + r > 0, p + r, 1), 0.0)
            return np.where((n_pred == 0) & (n_gold == 0), 1.0, f1)
        return s[..., 0] / np.maximum(s[..., 1], 1e-12)  # mean, ratio


def point_score(stats: Stats) -> float:
    """The score itself (mean over runs), on the reporting scale."""
    return float(_from_sums(stats.kind, stats.values.sum(axis=1)).mean() * stats.scale)


def resample_counts(name: str, n: int, n_boot: int = N_BOOT, seed: int = 42) -> np.ndarray:
    """(n_boot, n) multinomial counts, seeded by (seed, name, n) so every model of a dataset shares them."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode()), n])
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)


def draws(stats: Stats, n_boot: int = N_BOOT, seed: int = 42, resample_runs: bool = False) -> np.ndarray:
    """The score of each resample (mean over runs), on the reporting scale: shape (n_boot,).

    With ``resample_runs`` each resample also draws its runs with replacement (seeded like the example
    counts, so every model of a dataset draws the same runs: a paired comparison stays paired). Where the
    runs are demo draws (evaluation seeds), the interval then carries the demo-draw variance as well as
    the test-example sampling.
    """
    counts = resample_counts(stats.name, len(stats.uids), n_boot, seed)
    sums = np.einsum("bn,rnm->rbm", counts, stats.values)
    per_run = _from_sums(stats.kind, sums) * stats.scale  # (runs, n_boot)
    n_runs = per_run.shape[0]
    if not resample_runs or n_runs == 1:
        return per_run.mean(axis=0)
    rng = np.random.default_rng([seed, zlib.crc32(stats.name.encode()), len(stats.uids), n_runs])
    picks = rng.integers(n_runs, size=(n_boot, n_runs))
    return per_run[picks, np.arange(n_boot)[:, None]].mean(axis=1)


def _interval(x: np.ndarray) -> tuple[float, float]:
    tail = (1 - LEVEL) / 2 * 100
    return float(np.percentile(x, tail)), float(np.percentile(x, 100 - tail))


def estimate(
    stats: Stats | Sequence[Stats], n_boot: int = N_BOOT, seed: int = 42, resample_runs: bool = False
) -> Estimate:
    """Score with its 95% interval; a sequence of datasets gives their plain mean (the "overall")."""
    parts = [stats] if isinstance(stats, Stats) else list(stats)
    if not parts:
        raise ValueError("estimate: nothing to score")
    score = float(np.mean([point_score(s) for s in parts]))
    low, high = _interval(np.mean([draws(s, n_boot, seed, resample_runs) for s in parts], axis=0))
    return Estimate(round(score, 4), round(low, 4), round(high, 4), sum(len(s.uids) for s in parts))


def compare(
    a: Stats | Sequence[Stats],
    b: Stats | Sequence[Stats],
    names: tuple[str, str] = ("a", "b"),
    measure: str = "",
    n_boot: int = N_BOOT,
    seed: int = 42,
    resample_runs: bool = False,
) -> Difference:
    """Paired difference ``a - b`` over the same examples (per dataset, then averaged over datasets)."""
    pa = [a] if isinstance(a, Stats) else list(a)
    pb = [b] if isinstance(b, Stats) else list(b)
    if [(s.name, s.uids) for s in pa] != [(s.name, s.uids) for s in pb]:
        raise ValueError(f"compare {names[0]} with {names[1]}: they were not scored on the same examples")
    diff = float(np.mean([point_score(x) - point_score(y) for x, y in zip(pa, pb, strict=True)]))
    d = np.mean(
        [
            draws(x, n_boot, seed, resample_runs) - draws(y, n_boot, seed, resample_runs)
            for x, y in zip(pa, pb, strict=True)
        ],
        axis=0,
    )
    low, high = _interval(d)
    return Difference(
        names[0],
        names[1],
        measure or ", ".join(s.name for s in pa),
        round(diff, 4),
        round(low, 4),
        round(high, 4),
        sum(len(s.uids) for s in pa),
        pa[0].higher_is_better,
    )


# -- plain words -----------------------------------------------------------------------------------------------


def describe_difference(d: Difference, unit: str = "points") -> str:
    """One sentence: the difference, its interval, and whether the run can tell the two apart."""
    head = (
        f"{d.a} vs {d.b} on {d.measure}: {d.diff:+.2f} {unit} (95% CI {d.low:+.2f} to {d.high:+.2f}, n={d.n})"
    )
    if not d.significant:
        return f"{head}: not significant, the interval includes zero, so this run cannot tell them apart."
    side = d.a if d.better else d.b
    return f"{head}: significant, the interval excludes zero; {side} is better."


def describe_differences(diffs: Sequence[Difference], unit: str = "points") -> list[str]:
    """Sentences for a set of comparisons, significant ones first, with a closing caution when several
    comparisons are made (about 1 in 20 true-null comparisons looks significant at 95%)."""
    ordered = sorted(diffs, key=lambda d: not d.significant)
    lines = [describe_difference(d, unit) for d in ordered]
    n_sig = sum(d.significant for d in diffs)
    lines.append(
        f"{n_sig} of {len(diffs)} differences are significant at 95% (paired bootstrap over test examples, "
        f"{N_BOOT} resamples)"
        + (
            "; with this many comparisons about 1 in 20 can look significant by chance, and nothing here "
            "corrects for that."
            if len(diffs) > 3
            else "."
        )
    )
    return lines


def smoke_warning(n_examples: int, n_min: int = 100) -> str | None:
    """A label for runs too small to show anything: the tiny and CI presets are smoke runs."""
    if n_examples >= n_min:
        return None
    return (
        f"SMOKE RUN: {n_examples} test examples per dataset (< {n_min}). These numbers show that the pipeline "
        "runs; they have no statistical power, and differences between them are noise."
    )


def as_row(est: Estimate) -> dict[str, Any]:
    return {"score": est.score, "ci_low": est.low, "ci_high": est.high, "n": est.n}
