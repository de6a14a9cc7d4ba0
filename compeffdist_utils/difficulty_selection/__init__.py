"""Stage 05 (notebook ``05_difficulty_selection``): the rank-based difficulty score (with IFD, perplexity,
length) and the hard/soft/random selections at a budget; its figures. The literal reference scorer
(:mod:`.reference`, imports torch) is only for tests and benchmarks and is not re-exported.
"""

from compeffdist_utils.difficulty_selection.dataset_scores import load_scorer, score_dataset
from compeffdist_utils.difficulty_selection.scoring import encode_pairs
from compeffdist_utils.difficulty_selection.selection import select_samples, selector_picks, target_count

__all__ = [
    "encode_pairs",
    "load_scorer",
    "score_dataset",
    "select_samples",
    "selector_picks",
    "target_count",
]
