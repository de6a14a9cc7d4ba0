"""Stage 04 (notebook ``04_distillation_data``): instructions paired with user texts and answered by the
teacher: the distillation dataset and its held-out split; its figures.
"""

from compeffdist_utils.distillation_data.dataset import (
    answer_samples,
    pair_instructions_with_texts,
    sample_instruction,
)
from compeffdist_utils.distillation_data.heldout_split import HELDOUT_FILE, read_heldout, split_heldout

__all__ = [
    "HELDOUT_FILE",
    "answer_samples",
    "pair_instructions_with_texts",
    "read_heldout",
    "sample_instruction",
    "split_heldout",
]
