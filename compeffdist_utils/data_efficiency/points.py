"""Stage 08's grid design: which points (selector x budget x seed) it has and the params each one runs with.

Selectors map onto ``selection.select_samples``: ``random`` (a uniform sample of the whole pool, the
authors' random baseline: their ``random_sample`` draws globally, never per group), ``random_inprompt``
(a uniform sample inside each (cluster, task) group, i.e. stratified like the difficulty selectors, so
stratification and difficulty can be told apart), ``rank_hard`` / ``rank_soft`` (the rank score, hard
top-k or soft sampling), ``ifd`` / ``ppl`` / ``length`` (hard top-k by that score). All but the two
random selectors use the run's ``selection.stratify``. The
grid seed drives both the selection (random draws, stochastic quota rounding, tie-breaks) and the
training seed, so the spread over seeds covers both sources of variation; evaluation demo seeds stay
``evaluation.seeds``. Points train without a held-out slice (``eval_fraction`` 0): every selected
sample is training data, and the benchmark score is the measure.
"""

from __future__ import annotations

from dataclasses import dataclass

from compeffdist_utils.core.config import Params, params_from_dict

SELECTORS: dict[str, tuple[str, str]] = {  # name -> (selection.method, selection.score)
    "random": ("random", "rank"),
    "random_inprompt": ("random", "rank"),
    "rank_hard": ("hard", "rank"),
    "rank_soft": ("soft", "rank"),
    "ifd": ("hard", "ifd"),
    "ppl": ("hard", "ppl"),
    "length": ("hard", "length"),
}
RANDOM_STRATA = {"random": "full", "random_inprompt": "inprompt"}  # fixed, whatever selection.stratify says
BASE = "base"  # the untrained student, drawn as a reference line


@dataclass(frozen=True)
class GridPoint:
    selector: str
    budget: float
    seed: int

    @property
    def key(self) -> tuple[str, float, int]:
        return (self.selector, float(self.budget), int(self.seed))

    @property
    def slug(self) -> str:
        return f"{self.selector}__b{self.budget:g}__s{self.seed}"


def grid_points(params: Params) -> list[GridPoint]:
    """Every point, seed by seed and budget by budget, so a half-run grid already compares selectors."""
    ep = params.efficiency
    points = [GridPoint(s, b, seed) for seed in ep.seeds for b in ep.budgets for s in ep.selectors]
    if ep.include_base:
        points.insert(0, GridPoint(BASE, 0.0, 0))
    return points


def grid_params(params: Params) -> Params:
    """The run's params with the efficiency section's overrides applied (steps, datasets, n_test)."""
    ep = params.efficiency
    data = params.model_dump(mode="json")
    data["training"]["eval_fraction"] = 0.0
    if ep.max_steps is not None:
        data["training"]["max_steps"] = ep.max_steps
    if ep.datasets is not None:
        data["evaluation"]["datasets"] = list(ep.datasets)
    if ep.n_test is not None:
        data["evaluation"]["n_test"] = ep.n_test
    return params_from_dict(data, source="efficiency grid")


def point_params(gparams: Params, point: GridPoint) -> Params:
    """Params for one point: the selector's method and score, the budget, and the point's seed."""
    data = gparams.model_dump(mode="json")
    if point.selector != BASE:
        method, score = SELECTORS[point.selector]
        data["selection"].update(method=method, score=score, budget=point.budget, seed=point.seed)
        if point.selector in RANDOM_STRATA:
            data["selection"]["stratify"] = RANDOM_STRATA[point.selector]
        data["training"]["seed"] = point.seed
    return params_from_dict(data, source=f"efficiency point {point.slug}")
