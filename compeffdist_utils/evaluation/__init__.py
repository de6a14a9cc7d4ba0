"""Stage 07 (notebook ``07_evaluation``): SentiBench predictions per model, dataset and demo seed, their
scores with CIs and paired differences, the held-out teacher-answer loss; its tables and figures.
"""

from compeffdist_utils.evaluation.evaluate import evaluate_model, evaluate_models
from compeffdist_utils.evaluation.generation import classify, generate, label_token_ids
from compeffdist_utils.evaluation.heldout import (
    agreement_stats,
    heldout_loss_stats,
    heldout_path,
    teacher_answer_nll,
    write_heldout_loss,
)
from compeffdist_utils.evaluation.inputs import require_inputs
from compeffdist_utils.evaluation.parsing import items_to_records, parse_json_array
from compeffdist_utils.evaluation.plots import plot_confusions, plot_scores
from compeffdist_utils.evaluation.predictions import (
    SETTINGS_FILE,
    load_predictions,
    prediction_path,
    settings_key,
    write_settings,
)
from compeffdist_utils.evaluation.report import (
    benchmark_note,
    benchmark_overview,
    example_prompts,
    parse_failure_table,
    predictions_frame,
    save_results,
    scores_heading,
    settings_line,
    stage_notes,
    summarise,
    wrong_answers,
)
from compeffdist_utils.evaluation.scoring import metric_inputs, same_tuples, score_predictions
from compeffdist_utils.evaluation.significance import (
    difference_table,
    differences,
    evaluation_uncertainty,
    evaluation_uncertainty_for_run,
    model_roles,
    model_stats,
    prediction_runs,
    prediction_stats,
    score_table,
)

__all__ = [
    "SETTINGS_FILE",
    "agreement_stats",
    "benchmark_note",
    "benchmark_overview",
    "classify",
    "difference_table",
    "differences",
    "evaluate_model",
    "evaluate_models",
    "evaluation_uncertainty",
    "evaluation_uncertainty_for_run",
    "example_prompts",
    "generate",
    "heldout_loss_stats",
    "heldout_path",
    "items_to_records",
    "label_token_ids",
    "load_predictions",
    "metric_inputs",
    "model_roles",
    "model_stats",
    "parse_failure_table",
    "parse_json_array",
    "plot_confusions",
    "plot_scores",
    "prediction_path",
    "prediction_runs",
    "prediction_stats",
    "predictions_frame",
    "require_inputs",
    "same_tuples",
    "save_results",
    "score_predictions",
    "score_table",
    "scores_heading",
    "settings_key",
    "settings_line",
    "stage_notes",
    "summarise",
    "teacher_answer_nll",
    "write_heldout_loss",
    "write_settings",
    "wrong_answers",
]
