"""Stage 06 (notebook ``06_student_training``): SFT data (loss on the output only, packing), the LoRA or
full fine-tuning run (also ``python -m compeffdist_utils.student_training.training``), chat answers;
its learning curves.
"""

from compeffdist_utils.student_training.inference import chat_answers
from compeffdist_utils.student_training.plots import plot_learning_curves, read_train_log
from compeffdist_utils.student_training.sft_data import (
    IGNORE_INDEX,
    SFTCollator,
    pack_examples,
    render_prompt,
    split_train_eval,
    tokenize_records,
)
from compeffdist_utils.student_training.training import (
    FINGERPRINT_FILE,
    LOG_FILE,
    SUMMARY_FILE,
    completed_run,
    train_student,
)

__all__ = [
    "FINGERPRINT_FILE",
    "IGNORE_INDEX",
    "LOG_FILE",
    "SFTCollator",
    "SUMMARY_FILE",
    "chat_answers",
    "completed_run",
    "pack_examples",
    "plot_learning_curves",
    "read_train_log",
    "render_prompt",
    "split_train_eval",
    "tokenize_records",
    "train_student",
]
