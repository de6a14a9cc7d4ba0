"""Stage 05 (notebook ``05_difficulty_selection``): the rank-based difficulty score (with IFD, perplexity,
length) and the hard/soft/random selections at a budget; its figures. The literal reference scorer
(:mod:`.reference`, imports torch) is only for tests and benchmarks and is not re-exported.
"""

from compeffdist_utils.difficulty_selection.dataset_scores import load_scorer, score_dataset
from compeffdist_utils.difficulty_selection.scoring import (
    RawScore,
    encode_pairs,
    fit_to_window,
    score_encoded,
    token_breakdown,
    unconditional_prefix,
)
from compeffdist_utils.difficulty_selection.selection import (
    SCORE_KEYS,
    SelectionError,
    group_of,
    select_samples,
    selector_picks,
    soft_keep_probs,
    stochastic_quotas,
    target_count,
)
from compeffdist_utils.difficulty_selection.token_stats import response_token_stats, vocab_stats

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
    "score_encoded",
    "select_samples",
    "selector_picks",
    "soft_keep_probs",
    "stochastic_quotas",
    "target_count",
    "token_breakdown",
    "unconditional_prefix",
    "vocab_stats",
]
