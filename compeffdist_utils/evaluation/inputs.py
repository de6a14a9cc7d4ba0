"""Stage 07's inputs from earlier stages, each read through :meth:`Stage.require` (so a missing or stale
one stops the stage with the stage to rerun): the fallback corpus when SentiBench is absent (stage 00),
the held-out teacher answers when stage 04 set some apart, and the trained student when
``evaluation.models`` lists ``distilled`` and stage 06 has written it. A held-out file or a student
that is not there is no error: the loss is left out, the model is reported as skipped.
"""

from __future__ import annotations

from pathlib import Path

from compeffdist_utils.distillation_data.heldout_split import HELDOUT_FILE
from compeffdist_utils.models import resolve_alias
from compeffdist_utils.sentibench import Benchmark, load_for_run, resolve_sentibench_dir
from compeffdist_utils.stage.stage import Stage, find_project_root

FALLBACK_CORPUS = "corpus/holdout.jsonl"  # what :func:`sentibench.load_for_run` falls back on


def require_inputs(stage: Stage) -> Benchmark:
    """Check this run's upstream inputs of stage 07 through ``stage.require`` and load the benchmark."""
    settings = stage.params.evaluation
    root = find_project_root()
    folder = resolve_sentibench_dir(settings.sentibench_dir, root) if settings.sentibench_dir else None
    if folder is None or not folder.exists():
        stage.require(FALLBACK_CORPUS, "00_environment_and_corpus")
    if (stage.run_dir / HELDOUT_FILE).exists():
        stage.require(HELDOUT_FILE, "04_distillation_data")
    if "distilled" in settings.models.values():
        student = Path(resolve_alias("distilled", stage.params, stage.run_dir)).relative_to(stage.run_dir)
        if (stage.run_dir / student).exists():
            stage.require(str(student), "06_student_training")
    return load_for_run(settings.sentibench_dir, settings.datasets, settings.shots, stage.run_dir, root)
