"""Affinity Propagation with multiplicities: the paper's frequency weighting without the copies.

The authors weight a frequent attribute by repeating its vector ``e_i = int(log1p(count_i))`` extra
times, so name ``i`` stands for ``m_i = 1 + e_i`` identical points, and fit AP on all of them: about
``(4 n)^2`` entries per message matrix on the paper's inventory. Here the message passing runs on
``n x n`` matrices.

Derivation
----------
AP is max-sum message passing for "pick exemplars, send every point to one, pay the preference ``p``
per exemplar, maximise the summed similarity". In the repeated set two copies of a name are identical
(similarity 0). With ``p < 0`` (a percentile of negative squared distances, or the search below) a
solution never gains from making two copies of one name exemplars: the second costs ``p`` and brings
the first's siblings nothing they do not already have at similarity 0; and which copy is the exemplar
is a relabelling. So the repeated problem has the same optimum as this one: every name has one
*leader* copy, the only one that may be an exemplar, and ``m_i - 1`` *followers* that are assigned
like any point but are never exemplars. That is also what the repeated run ends in (measured: one
exemplar copy per exemplar name, every name's copies in one cluster).

Followers of one name are identical, so they share their messages; the messages are

- ``RL[i, k]``, ``AL[i, k]``: from the leader of ``i`` to the leader (candidate) ``k``;
- ``RF[i, k]``, ``AF[i, k]``: from each follower of ``i`` to candidate ``k``; a follower sees its own
  leader at similarity 0 where the leader sees itself at ``p``.

Responsibilities are AP's, row by row over the ``n`` candidates:
``R(x, k) = s(x, k) - max_{k' != k} (A(x, k') + s(x, k'))``. Availabilities sum the positive
responsibilities a candidate receives from every other *point*, i.e. over names weighted by their
follower counts: ``P_k = sum_{i != k} max(0, RL[i, k]) + sum_i (m_i - 1) max(0, RF[i, k])``; then
``AL[k, k] = P_k`` and ``A(x, k) = min(0, RL[k, k] + P_k - max(0, R(x, k)))`` for every other point
``x`` (a leader or one follower: only ``x``'s own term is left out, its identical siblings still
count). This is why the weighting is *not* a scaling of row ``i`` of ``S`` by ``m_i``: the followers'
responsibilities towards their own leader (similarity 0) are what make a frequent name a strong
exemplar (the issue measured 248 clusters for row scaling where the repeated points give 102).

Everything else is scikit-learn's procedure (1.x ``_affinity_propagation``): damping, the same tiny
seeded noise on ``S`` to break ties, exemplars where ``AL[k, k] + RL[k, k] > 0``, the same convergence
test over ``convergence_iter`` iterations, and the same final assignment and exemplar refinement, whose
sum over a cluster's points weights each name by ``m_i``. With every ``m_i = 1`` there are no followers
and the run is exactly scikit-learn's, labels included (a test checks it).

Against the repeated run (``clustering.ap_solver: repeated``), MiniLM embeddings, damping 0.9:

- the hand-written 332-name test inventory (paper-like counts, 1,225 repeated points): percentile 0.5
  gives 205 clusters vs 191 (adjusted Rand 0.92, seeds 42 and 0 alike), percentile 10 gives 217 vs
  200-202 (ARI 0.89); 300 synthetic bench names (1,600 points) at percentiles 0.5 / 2 / 10 / 50:
  214/206, 221/213, 228/223, 247/235 clusters, ARI 0.93, 0.91, 0.92, 0.86 (two repeated runs that
  differ only in their seed agree to 0.97 and 0.88 at 0.5 and 50);
- but the repeated run is not a stable reference everywhere. Identical copies dilute each other's
  responsibilities until floating-point noise breaks the tie, and sometimes the run collapses instead:
  at percentile 50 on the 332 names it returns 1 cluster (both seeds), on the first 120 names at
  percentile 0.5 it returns 32 clusters with seed 42 and 4 with seed 0. In every such case the
  reduced run reaches a much better value of the repeated set's own objective (net similarity -485
  vs -1,785; -195 vs -279 and -534), and where the repeated run does break the tie it gives the
  same labels (ARI 1.0 against the seed-0 run, 92 clusters each, on 120 names with counts
  8,350 / rank^0.9 at percentile 50, where the seed-42 run collapsed to 24).

How ill-conditioned the repeated reference is shows when only its rounding changes: the same
procedure on the same copies, run by this module with every multiplicity 1 (scikit-learn's steps with
the availabilities summed in another order; label for label scikit-learn's where there are no ties),
gives on the 332 names at percentile 0.5 122 clusters (seed 42) and 173 (seed 0) where scikit-learn
gives 191, adjusted Rand 0.54 / 0.82 against the reduced run; in float32 (the cheaper fallback,
``ap_dtype: float32``) 156 / 160 (ARI 0.76 / 0.75); at percentile 10 float64 collapses to 1 and 85
clusters, float32 gives 173 / 173. The reduced run does not have the ties and does not move with the
seed. So an adjusted Rand of 0.9 against "the" repeated run is a target the repeated run cannot meet
against itself; where scikit-learn's run breaks its ties cleanly the reduced run matches it (>= 0.9
above), and where it does not, no formulation can match all of its variants at once.

The reduced run is also much faster to converge (60-85 iterations where the repeated run needs
300-480), which with the ``n^2`` matrices makes the bulk of the speed-up (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class APFit:
    """The outcome of one Affinity Propagation run on the unique names."""

    labels: np.ndarray  # 0..K-1 per name (exemplar order), -1 everywhere when no exemplar emerged
    exemplars: np.ndarray  # name index of each cluster's exemplar
    n_iter: int
    converged: bool


def _responsibilities(A: np.ndarray, S: np.ndarray, out: np.ndarray, ind: np.ndarray) -> None:
    """``out <- S - max over the other candidates of (A + S)``, row-wise (AP's first-max trick)."""
    np.add(A, S, out)
    best = np.argmax(out, axis=1)
    y1 = out[ind, best]
    out[ind, best] = -np.inf
    y2 = np.max(out, axis=1)
    np.subtract(S, y1[:, None], out)
    out[ind, best] = S[ind, best] - y2


def _damp(old: np.ndarray, new: np.ndarray, damping: float) -> None:
    """``old <- damping * old + (1 - damping) * new``, in place (``new`` is scratch)."""
    new *= 1 - damping
    old *= damping
    old += new


def weighted_affinity_propagation(
    s: np.ndarray,
    multiplicity: np.ndarray,
    preference: float,
    *,
    damping: float = 0.9,
    max_iter: int = 1000,
    convergence_iter: int = 15,
    random_state: int = 42,
    dtype: type[np.floating] = np.float64,
) -> APFit:
    """AP on ``n`` names where name ``i`` stands for ``multiplicity[i]`` identical points.

    ``s`` is the ``n x n`` similarity of the names (its diagonal is ignored); it is not modified.
    ``dtype`` float32 halves the memory of every message matrix (what makes the materialised
    repeated points affordable as a check); float64 is scikit-learn's arithmetic, label for label.

    One function on purpose: the message-passing loop follows scikit-learn's ``affinity_propagation``
    step for step (noise, damping, convergence test), so the two can be compared line by line.
    """
    n = s.shape[0]
    m = np.asarray(multiplicity, dtype=np.int64)
    if m.shape != (n,) or (m < 1).any():
        raise ValueError(f"multiplicity must be {n} whole numbers >= 1")
    S = np.array(s, dtype=dtype)
    S.flat[:: n + 1] = preference
    rng = np.random.RandomState(random_state)
    # scikit-learn's tie-breaking noise, the same draws for the same seed (scaled to the dtype's epsilon).
    # Drawn a block of rows at a time (the same stream as one (n, n) draw) so that float32 runs never
    # hold a float64 n x n matrix.
    eps, tiny = np.finfo(dtype).eps, np.finfo(dtype).tiny
    for start in range(0, n, 512):
        rows = S[start : start + 512]
        noise = rng.standard_normal(size=rows.shape).astype(dtype, copy=False)
        noise *= eps * rows + tiny * 100
        rows += noise
    followers = (m - 1).astype(dtype)
    has_followers = bool(followers.any())

    RL, AL, tmp = np.zeros((n, n), dtype), np.zeros((n, n), dtype), np.empty((n, n), dtype)
    if has_followers:
        SF = S.copy()
        SF.flat[:: n + 1] = 0.0  # a follower sees its own leader at distance 0
        RF, AF, pos_f = np.zeros((n, n), dtype), np.zeros((n, n), dtype), np.empty((n, n), dtype)
    ind = np.arange(n)
    history = np.zeros((n, convergence_iter), dtype=bool)
    converged = False
    it = 0
    for it in range(max_iter):
        _responsibilities(AL, S, tmp, ind)
        _damp(RL, tmp, damping)
        if has_followers:
            _responsibilities(AF, SF, tmp, ind)
            _damp(RF, tmp, damping)

        r_self = RL.diagonal().copy()
        np.maximum(RL, 0, out=tmp)
        tmp.flat[:: n + 1] = 0.0
        received = tmp.sum(axis=0)
        if has_followers:
            np.maximum(RF, 0, out=pos_f)
            received += followers @ pos_f
        base = r_self + received
        np.subtract(base[None, :], tmp, out=tmp)
        np.minimum(tmp, 0, out=tmp)
        tmp.flat[:: n + 1] = received
        _damp(AL, tmp, damping)
        if has_followers:
            np.subtract(base[None, :], pos_f, out=tmp)
            np.minimum(tmp, 0, out=tmp)
            _damp(AF, tmp, damping)

        is_exemplar = (AL.diagonal() + RL.diagonal()) > 0
        history[:, it % convergence_iter] = is_exemplar
        if it >= convergence_iter:
            stable = history.sum(axis=1)
            if ((stable == convergence_iter) | (stable == 0)).all() and is_exemplar.any():
                converged = True
                break

    exemplars = np.flatnonzero(is_exemplar)
    if exemplars.size == 0:
        return APFit(np.full(n, -1), exemplars, it + 1, converged)
    weights = m.astype(np.float64)
    assign = np.argmax(S[:, exemplars], axis=1)
    assign[exemplars] = np.arange(exemplars.size)
    for k in range(exemplars.size):
        members = np.flatnonzero(assign == k)
        block = S[np.ix_(members, members)] * weights[members][:, None]
        block.flat[:: members.size + 1] = S[members, members]  # a candidate's siblings add 0, itself p
        exemplars[k] = members[np.argmax(block.sum(axis=0))]
    assign = np.argmax(S[:, exemplars], axis=1)
    assign[exemplars] = np.arange(exemplars.size)
    labels = exemplars[assign]
    centres = np.unique(labels)
    return APFit(np.searchsorted(centres, labels), centres, it + 1, converged)


# ---------------------------------------------------------------------------------------------------
# Preference search: a granularity that does not depend on the embedder's geometry
# ---------------------------------------------------------------------------------------------------


@dataclass
class SearchStep:
    """One AP run of the preference search."""

    preference: float
    n_clusters: int
    converged: bool
    n_iter: int


def search_preference(
    run: Callable[[float], APFit],
    s: np.ndarray,
    target: int,
    *,
    tolerance: int,
    max_steps: int,
) -> tuple[float, APFit, list[SearchStep]]:
    """The preference whose AP run gives ``target`` clusters (within ``tolerance``), by bisection.

    The cluster count grows with the preference. Preferences are negative squared distances, spread
    over orders of magnitude, so the bracket is bisected geometrically (``-sqrt(lo * hi)``). It starts
    at [most negative, least negative] off-diagonal similarity; frequency weighting can need a lower
    preference than any similarity, so the lower end is doubled until it gives at most ``target``
    clusters. It stops within ``tolerance``, after ``max_steps`` runs, or when the bracket is 0.1% wide
    (the count jumped over the target). Returns the best preference, its fit and every step (for the
    notebook's curve): the closest count, a converged run before a non-converged one.
    """
    n = s.shape[0]
    off = s[~np.eye(n, dtype=bool)]
    lo = min(float(off.min()), -1e-9)
    hi = min(float(off.max()), -1e-12)  # identical names have similarity 0: stay below it
    if hi <= lo:
        hi = lo / 2
    steps: list[SearchStep] = []
    fits: list[APFit] = []

    def evaluate(pref: float) -> int:
        fit = run(pref)
        steps.append(SearchStep(pref, int(fit.exemplars.size), fit.converged, fit.n_iter))
        fits.append(fit)
        return steps[-1].n_clusters

    def done() -> bool:
        return abs(steps[-1].n_clusters - target) <= tolerance or len(steps) >= max_steps

    k_lo = evaluate(lo)
    while k_lo > target and not done():
        hi, lo = lo, lo * 2
        k_lo = evaluate(lo)
    # AP's count can jump over the target between two close preferences: stop when the bracket is tight.
    while not done() and lo / hi > 1 + 1e-3:
        mid = -math.sqrt(lo * hi)
        if evaluate(mid) < target:
            lo = mid
        else:
            hi = mid
    best = min(range(len(steps)), key=lambda i: (abs(steps[i].n_clusters - target), not steps[i].converged))
    return steps[best].preference, fits[best], steps
