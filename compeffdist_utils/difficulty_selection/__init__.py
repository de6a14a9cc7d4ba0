"""Stage 05 (notebook ``05_difficulty_selection``): the rank-based difficulty score (with IFD, perplexity,
length) and the hard/soft/random selections at a budget; its figures. The literal reference scorer
(:mod:`.reference`, imports torch) is only for tests and benchmarks and is not re-exported.
"""

from compeffdist_utils.difficulty_selection.scoring import (
    RawScore,
    encode_pairs,
    fit_to_window,
    load_scorer,
    response_token_stats,
    score_dataset,
    token_breakdown,
    unconditional_prefix,
    vocab_stats,
)
from compeffdist_utils.difficulty_selection.selection import (
    SCORE_KEYS,
    SelectionError,
    group_of,
    select_samples,
    soft_keep_probs,
    stochastic_quotas,
    target_count,
)

__all__ = [
    "RawScore",
    "SCORE_KEYS",
    "SelectionError",
    "encode_pairs",
    "fit_to_window",
    "group_of",
    "load_scorer",
    "response_token_stats",
    "score_dataset",
    "select_samples",
    "soft_keep_probs",
    "stochastic_quotas",
    "target_count",
    "token_breakdown",
    "unconditional_prefix",
    "vocab_stats",
]
