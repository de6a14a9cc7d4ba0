"""Stage 06 (notebook ``06_student_training``): SFT data (loss on the output only, packing), the LoRA or
full fine-tuning run (also ``python -m compeffdist_utils.student_training.training``), chat answers;
its learning curves.
"""

from compeffdist_utils.student_training.checkpoints import (
    FINGERPRINT_FILE,
    drop_stale_checkpoints,
    fingerprint,
    last_complete_checkpoint,
    prepare_checkpoints,
)
from compeffdist_utils.student_training.inference import before_and_after, chat_answers
from compeffdist_utils.student_training.plots import plot_learning_curves, read_train_log
from compeffdist_utils.student_training.sft_data import (
    IGNORE_INDEX,
    SFTCollator,
    TokenizeReport,
    pack_examples,
    render_prompt,
    split_train_eval,
    tokenize_records,
)
from compeffdist_utils.student_training.trainer_setup import (
    count_params,
    log_callback_class,
    name_base_by_spec,
    training_arguments,
    wrap_model,
)
from compeffdist_utils.student_training.training import (
    LOG_FILE,
    SUMMARY_FILE,
    TrainResult,
    completed_run,
    train_student,
)

__all__ = [
    "FINGERPRINT_FILE",
    "IGNORE_INDEX",
    "LOG_FILE",
    "SFTCollator",
    "SUMMARY_FILE",
    "TokenizeReport",
    "TrainResult",
    "before_and_after",
    "chat_answers",
    "completed_run",
    "count_params",
    "drop_stale_checkpoints",
    "fingerprint",
    "last_complete_checkpoint",
    "log_callback_class",
    "name_base_by_spec",
    "pack_examples",
    "plot_learning_curves",
    "prepare_checkpoints",
    "read_train_log",
    "render_prompt",
    "split_train_eval",
    "tokenize_records",
    "train_student",
    "training_arguments",
    "wrap_model",
]
