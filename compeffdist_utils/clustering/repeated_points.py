"""The authors' formulation of frequency weighting: materialised repeated points.

A name seen ``count`` times is repeated ``int(log1p(count))`` extra times and Affinity Propagation runs
on every copy (``clustering.ap_solver: repeated``): the reference that :mod:`.weighted_ap` reduces to
the unique names, and the path for non-AP methods, which see the copies as weighting.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from sklearn.cluster import AffinityPropagation
from sklearn.exceptions import ConvergenceWarning

from compeffdist_utils.clustering.weighted_ap import APFit, weighted_affinity_propagation

if TYPE_CHECKING:
    from compeffdist_utils.core.config import ClusteringParams


def extra_copies(counts: Sequence[int], weighting: bool) -> np.ndarray:
    """How many extra times each vector is repeated: ``int(log1p(count))``, or 0 without weighting."""
    if not weighting:
        return np.zeros(len(counts), dtype=int)
    return np.array([int(math.log1p(c)) for c in counts], dtype=int)


def point_origin(extra: np.ndarray) -> np.ndarray:
    """The original index of every point of the repeated set: originals first, then their copies."""
    return np.concatenate([np.arange(len(extra)), np.repeat(np.arange(len(extra)), extra)])


def repeated_ap(s: np.ndarray, multiplicity: np.ndarray, preference: float, cp: ClusteringParams) -> APFit:
    """The authors' formulation: AP on the materialised copies, read back for the names.

    float64 is scikit-learn itself (the authors' code path). ``ap_dtype: float32`` runs the kit's AP
    (scikit-learn's procedure, :mod:`.weighted_ap`) on the copies with half the memory per matrix.
    """
    n = len(s)
    origin = point_origin(multiplicity - 1)
    copies = s[np.ix_(origin, origin)]
    if cp.ap_dtype == "float32":
        fit = weighted_affinity_propagation(
            copies, np.ones(origin.size, dtype=int), preference, damping=cp.damping, max_iter=cp.max_iter,
            convergence_iter=cp.convergence_iter, random_state=cp.random_state, dtype=np.float32,
        )  # fmt: skip
    else:
        fit = sklearn_ap(copies, preference, cp)
    if fit.exemplars.size == 0:
        return APFit(np.full(n, -1), fit.exemplars, fit.n_iter, fit.converged)
    used, labels = np.unique(fit.labels[:n], return_inverse=True)
    return APFit(labels, origin[fit.exemplars[used]], fit.n_iter, fit.converged)


def sklearn_ap(s: np.ndarray, preference: float, cp: ClusteringParams) -> APFit:
    """scikit-learn's AP on a matrix we own (labels index its exemplars, as :class:`.weighted_ap.APFit`)."""
    ap = AffinityPropagation(
        affinity="precomputed",
        damping=cp.damping,
        max_iter=cp.max_iter,
        convergence_iter=cp.convergence_iter,
        preference=preference,
        random_state=cp.random_state,
        copy=False,  # the expanded matrix is ours: saves one N x N matrix
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ap.fit(s)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return APFit(
        np.asarray(ap.labels_), np.asarray(ap.cluster_centers_indices_, dtype=int), int(ap.n_iter_), converged
    )
