"""Stage 07 (notebook ``07_evaluation``): SentiBench predictions per model, dataset and demo seed, their
scores with CIs and paired differences, the held-out teacher-answer loss; its tables and figures.
"""

from compeffdist_utils.evaluation.evaluate import evaluate_model, evaluate_models
from compeffdist_utils.evaluation.heldout import (
    agreement_stats,
    heldout_loss_stats,
    heldout_path,
    teacher_answer_nll,
    write_heldout_loss,
)
from compeffdist_utils.evaluation.inputs import require_inputs
from compeffdist_utils.evaluation.predictions import (
    SETTINGS_FILE,
    load_predictions,
    prediction_path,
    settings_key,
)
from compeffdist_utils.evaluation.significance import (
    difference_table,
    evaluation_uncertainty_for_run,
    model_roles,
    model_stats,
    prediction_runs,
    prediction_stats,
)

__all__ = [
    "SETTINGS_FILE",
    "agreement_stats",
    "difference_table",
    "evaluate_model",
    "evaluate_models",
    "evaluation_uncertainty_for_run",
    "heldout_loss_stats",
    "heldout_path",
    "load_predictions",
    "model_roles",
    "model_stats",
    "prediction_path",
    "prediction_runs",
    "prediction_stats",
    "require_inputs",
    "settings_key",
    "teacher_answer_nll",
    "write_heldout_loss",
]
