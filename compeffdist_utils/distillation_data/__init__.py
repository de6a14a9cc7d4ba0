"""Stage 04 (notebook ``04_distillation_data``): instructions paired with user texts and answered by the
teacher: the distillation dataset and its held-out split; its figures.
"""

from compeffdist_utils.distillation_data.dataset import (
    DATASET_FIELDS,
    DistillDataError,
    answer_samples,
    pair_instructions_with_texts,
    sample_instruction,
)

__all__ = [
    "DATASET_FIELDS",
    "DistillDataError",
    "answer_samples",
    "pair_instructions_with_texts",
    "sample_instruction",
]
