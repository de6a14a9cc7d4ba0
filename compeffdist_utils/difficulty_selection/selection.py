"""Budgeted selection of distillation samples by difficulty (docs/METHOD.md, step 6).

Every score is "higher = harder, keep the top" (rank, ifd, ppl, length). Methods:

- ``hard``: keep the top of each group (ties broken at random with the seed, so file order does not
  decide them);
- ``soft``: keep each sample with probability F(x) of its difficulty percentile x in its group,
  F(x) = (x/a)^b for x < a and ((x-1)/(a-1))^b for x >= a (peak a = ``soft_peak``). Percentiles are
  mid-ranks, x = (average rank - 0.5) / n, so they lie in (0, 1) and tied scores share a probability.
  b is solved with Brent's method so that the mean of F over the group's actual percentiles equals
  the rate: the expected kept fraction is then exact for the data at hand. (Over a continuum of
  percentiles the integral of F is 1/(b+1) for every a, so b = 1/rate - 1 is where the solver starts.)
  If points sit exactly at the peak, F is 1 there for every b; when they alone exceed the rate, they
  are kept with probability rate / (their share) and the others dropped, still exact in expectation;
- ``random``: a uniform sample of the group's quota.

Stratification: ``inprompt`` selects inside each (cluster_id, task_name) group, analysis samples
grouped by their analysis prompt (the record's ``prompt``, else the instruction before its last
"\\n\\nInput:"), so every perspective and task keeps its share; ``full`` is one global group. Records
without cluster_id / task_name fall into the group of the values they do have ("-" for missing).

Quotas (hard, random): group g's expected quota is target * n_g / n. It is rounded by systematic
sampling over the groups in random order: each quota goes up with probability equal to its fractional
part (the stochastic rounding of the method), and the rounded quotas add up to the target exactly
when it is whole, within one otherwise. Rounding each group independently would let the total drift.

Budget: <= 1 is a fraction of the scored pool, > 1 a whole number of samples (1 means everything).
Records without a usable score are left out of the pool and counted in the summary.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from compeffdist_utils.core.config import SelectionParams
from compeffdist_utils.core.samples import require_samples

SCORE_KEYS = ("rank", "ifd", "ppl", "length")
_INPUT_SEP = "\n\nInput:"


class SelectionError(ValueError):
    """A selection that cannot be made as asked (budget, score key, scores); the message says why."""


def target_count(budget: float, n: int) -> Fraction:
    """The expected number of samples to keep, exactly (a fraction of n, or a whole count)."""
    if not isinstance(budget, (int, float)) or not math.isfinite(budget) or budget <= 0:
        raise SelectionError(f"selection budget must be a positive number; got {budget!r}")
    if budget <= 1:
        # 0.1 * 300 is 30.000000000000004 in floats; the decimal the user wrote is what is meant.
        return Fraction(str(budget)) * n
    if budget != int(budget):
        raise SelectionError(f"a budget above 1 is a number of samples and must be whole; got {budget}")
    if budget > n:
        raise SelectionError(f"budget of {int(budget)} samples exceeds the {n} scored samples in the pool")
    return Fraction(int(budget))


def group_of(record: dict[str, Any], stratify: str) -> str:
    """The stratum label of a record: "all", "<cluster>/<task>" or "<cluster>/analysis:<prompt hash>"."""
    if stratify == "full":
        return "all"
    cluster = record.get("cluster_id")
    task = record.get("task_name")
    c = "-" if cluster is None else str(cluster)
    if task == "analysis":
        prompt = record.get("prompt") or record["instruction"].rsplit(_INPUT_SEP, 1)[0]
        return f"{c}/analysis:{hashlib.sha1(prompt.encode('utf-8')).hexdigest()[:8]}"
    return f"{c}/{'-' if task is None else task}"


def stochastic_quotas(expected: Sequence[Fraction], rng: np.random.Generator) -> list[int]:
    """Round each expected quota to floor or ceil, ceil with probability = its fractional part,
    by systematic sampling (one uniform offset, groups in random order): the total stays exact."""
    offset = Fraction(float(rng.random()))
    out = [0] * len(expected)
    cum, prev = Fraction(0), 0
    for g in rng.permutation(len(expected)):
        cum += expected[g]
        cur = math.floor(cum + offset)
        out[g] = cur - prev
        prev = cur
    return out


def soft_keep_probs(x: np.ndarray, rate: float, peak: float) -> tuple[np.ndarray, float]:
    """(keep probability per percentile, b) with mean probability = rate exactly."""
    from scipy.optimize import brentq  # deferred: heavy (~1 s), only for soft selection

    if rate >= 1:
        return np.ones_like(x), 0.0
    ratio = np.where(x < peak, x / peak, (1.0 - x) / max(1.0 - peak, 1e-300))
    log_ratio = np.log(np.clip(ratio, 1e-300, 1.0))
    at_peak = log_ratio == 0.0

    def excess(b: float) -> float:
        return float(np.exp(b * log_ratio).mean()) - rate

    if at_peak.mean() >= rate:
        return np.where(at_peak, rate / at_peak.mean(), 0.0), math.inf
    hi = max(1.0, 2.0 * (1.0 / rate - 1.0))
    while excess(hi) > 0:
        hi *= 2.0
    b = float(brentq(excess, 0.0, hi, xtol=1e-12, rtol=1e-12, maxiter=500))
    return np.exp(b * log_ratio), b


def _midrank_percentiles(scores: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata  # deferred: heavy (~2 s), only for soft selection

    return (rankdata(scores, method="average") - 0.5) / len(scores)


def _score_table(
    pool: list[dict[str, Any]], scores: Sequence[dict[str, Any]] | None, key: str, need: bool
) -> tuple[list[float | None], int]:
    if scores is None:
        if need:
            raise SelectionError(f"selection by {key!r} needs the difficulty scores")
        return [None] * len(pool), 0
    by_id: dict[str, Any] = {}
    for row in scores:
        if key not in row:
            raise SelectionError(f"score rows have no {key!r} field; available: {sorted(row)}")
        by_id[str(row["sample_id"])] = row[key]
    values: list[float | None] = []
    for rec in pool:
        v = by_id.get(rec["sample_id"])
        ok = isinstance(v, (int, float)) and math.isfinite(v)
        values.append(float(v) if ok else None)
    return values, sum(v is None for v in values)


def select_samples(
    records: Sequence[dict[str, Any]],
    scores: Sequence[dict[str, Any]] | None,
    settings: SelectionParams,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(selected records in pool order, summary). Each selected record gains ``score``, ``group``,
    ``group_size``, ``rank_in_group`` (1 = hardest of its group; None without scores) and, for soft,
    ``keep_prob``. ``scores`` rows are joined by sample_id; it may be None only for ``random``.
    """
    if settings.score not in SCORE_KEYS:
        raise SelectionError(f"unknown score {settings.score!r}; available: {list(SCORE_KEYS)}")
    samples = require_samples(records, "select_samples")
    values, n_unscored = _score_table(samples, scores, settings.score, settings.method != "random")
    if settings.method == "random" and scores is None:
        pool_idx = list(range(len(samples)))
    else:
        pool_idx = [i for i, v in enumerate(values) if v is not None]
    if not pool_idx:
        raise SelectionError("no sample has a usable score; nothing to select from")
    target = target_count(settings.budget, len(pool_idx))
    rate = float(target / len(pool_idx))
    rng = np.random.default_rng(settings.seed)

    groups: dict[str, list[int]] = {}
    for i in pool_idx:
        groups.setdefault(group_of(samples[i], settings.stratify), []).append(i)
    names = sorted(groups)
    quotas = stochastic_quotas([target * len(groups[g]) / len(pool_idx) for g in names], rng)

    kept: dict[int, dict[str, Any]] = {}
    group_rows = []
    for name, quota in zip(names, quotas, strict=True):
        chosen, row = _select_group(name, groups[name], quota, values, rate, settings, rng)
        kept.update(chosen)
        group_rows.append(row)

    selected = [{**samples[i], **kept[i]} for i in sorted(kept)]
    summary = {
        "method": settings.method,
        "score": settings.score,
        "stratify": settings.stratify,
        "budget": settings.budget,
        "soft_peak": settings.soft_peak if settings.method == "soft" else None,
        "seed": settings.seed,
        "n_records": len(samples),
        "n_unscored": n_unscored,
        "n_pool": len(pool_idx),
        "expected": float(target),
        "n_selected": len(selected),
        "n_groups": len(names),
        "n_groups_selected": sum(r["n_selected"] > 0 for r in group_rows),
        "groups": group_rows,
    }
    return selected, summary


def _select_group(
    name: str,
    members: list[int],
    quota: int,
    values: list[float | None],
    rate: float,
    settings: SelectionParams,
    rng: np.random.Generator,
) -> tuple[dict[int, dict[str, Any]], dict[str, Any]]:
    """({pool index: why it was kept} for one group's kept members, the group's summary row)."""
    has_scores = values[members[0]] is not None
    score_arr = np.array([values[i] if has_scores else 0.0 for i in members], dtype=float)
    # Hardest first; random tie-break so that equal scores are not decided by file order.
    order = np.lexsort((rng.random(len(members)), -score_arr))
    rank_of = {members[j]: pos + 1 for pos, j in enumerate(order)}
    extra: dict[int, dict[str, Any]] = {}
    b: float | None = None
    if settings.method == "hard":
        chosen = [members[j] for j in order[:quota]]
    elif settings.method == "random":
        chosen = [members[j] for j in rng.permutation(len(members))[:quota]]
    else:
        probs, b = soft_keep_probs(_midrank_percentiles(score_arr), rate, settings.soft_peak)
        draws = rng.random(len(members))
        chosen = [i for i, p, u in zip(members, probs, draws, strict=True) if u < p]
        extra = {i: {"keep_prob": float(p)} for i, p in zip(members, probs, strict=True)}
    kept = {
        i: {
            "score": values[i],
            "group": name,
            "group_size": len(members),
            "rank_in_group": rank_of[i] if has_scores else None,
            **extra.get(i, {}),
        }
        for i in chosen
    }
    row = {
        "group": name,
        "n_pool": len(members),
        "expected": float(rate * len(members)),
        "n_selected": len(chosen),
    }
    if settings.method != "soft":
        row["quota"] = quota
    else:
        row["b"] = b
    return kept, row


def selector_picks(
    samples: Sequence[dict[str, Any]],
    scores: Sequence[dict[str, Any]],
    settings: SelectionParams,
    selected: Sequence[dict[str, Any]],
) -> dict[str, set[str]]:
    """The sample ids that ``hard`` selection by each available score and a random draw keep, at the
    stage's budget, stratification and seed (to compare the selectors). The stage's own selection
    ``selected`` stands for the selector it was made with; only the other selectors are run here."""
    available = {k for s in scores for k, v in s.items() if v is not None}
    own = (settings.method, settings.score if settings.method == "hard" else None)
    picks: dict[str, set[str]] = {}
    for method, key in [*(("hard", k) for k in SCORE_KEYS if k in available), ("random", None)]:
        if (method, key) == own:
            kept = list(selected)
        else:
            update = {"method": method, **({"score": key} if key else {})}
            kept, _ = select_samples(samples, scores, settings.model_copy(update=update))
        picks[f"{method} {key}" if key else method] = {r["sample_id"] for r in kept}
    return picks
