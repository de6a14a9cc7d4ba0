"""Stage 07 (notebook ``07_evaluation``): SentiBench predictions per model, dataset and demo seed, their
scores with CIs and paired differences, the held-out teacher-answer loss; its tables and figures.
"""

from compeffdist_utils.evaluation.evaluate import evaluate_model, evaluate_models, metric_inputs, summarise
from compeffdist_utils.evaluation.heldout import (
    HELDOUT_FILE,
    agreement_stats,
    heldout_loss_stats,
    heldout_path,
    split_heldout,
    teacher_answer_nll,
    write_heldout_loss,
)
from compeffdist_utils.evaluation.plots import (
    parse_failure_table,
    plot_confusions,
    plot_scores,
    predictions_frame,
    wrong_answers,
)
from compeffdist_utils.evaluation.predictions import (
    SETTINGS_FILE,
    load_predictions,
    prediction_path,
    settings_key,
    write_settings,
)
from compeffdist_utils.evaluation.significance import (
    difference_table,
    differences,
    evaluation_uncertainty,
    model_roles,
    model_stats,
    prediction_runs,
    prediction_stats,
    score_table,
)

__all__ = [
    "HELDOUT_FILE",
    "SETTINGS_FILE",
    "agreement_stats",
    "difference_table",
    "differences",
    "evaluate_model",
    "evaluate_models",
    "evaluation_uncertainty",
    "heldout_loss_stats",
    "heldout_path",
    "load_predictions",
    "metric_inputs",
    "model_roles",
    "model_stats",
    "parse_failure_table",
    "plot_confusions",
    "plot_scores",
    "prediction_path",
    "prediction_runs",
    "prediction_stats",
    "predictions_frame",
    "score_table",
    "settings_key",
    "split_heldout",
    "summarise",
    "teacher_answer_nll",
    "write_heldout_loss",
    "write_settings",
    "wrong_answers",
]
