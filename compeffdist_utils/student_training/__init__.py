"""Stage 06 (notebook ``06_student_training``): SFT data (loss on the output only, packing), the LoRA or
full fine-tuning run (also ``python -m compeffdist_utils.student_training.training``), chat answers;
its learning curves.
"""

from compeffdist_utils.student_training.inference import before_and_after
from compeffdist_utils.student_training.plots import plot_learning_curves, read_train_log
from compeffdist_utils.student_training.sft_data import (
    IGNORE_INDEX,
    SFTCollator,
    split_train_eval,
    tokenize_records,
)
from compeffdist_utils.student_training.training import completed_run, train_student

__all__ = [
    "IGNORE_INDEX",
    "SFTCollator",
    "before_and_after",
    "completed_run",
    "plot_learning_curves",
    "read_train_log",
    "split_train_eval",
    "tokenize_records",
    "train_student",
]
