"""Uncertainty: per-example statistics whose sums give each metric, paired bootstrap resamples, CIs and
plain-language verdicts on differences.
"""

from compeffdist_utils.stats.uncertainty import (
    Difference,
    Stats,
    as_row,
    compare,
    describe_differences,
    estimate,
    loss_stats,
    metric_stats,
    point_score,
    rate_stats,
    smoke_warning,
)

__all__ = [
    "Difference",
    "Stats",
    "as_row",
    "compare",
    "describe_differences",
    "estimate",
    "loss_stats",
    "metric_stats",
    "point_score",
    "rate_stats",
    "smoke_warning",
]
