"""Sharing what a run made (`compeffdist export RUN_DIR --out DIR`): the distillation data as a Hugging Face
dataset folder (Parquet files and a dataset card whose `configs` are the pool and each selection) and the
distilled student as a standalone transformers folder with a model card (SentiBench scores with CIs and
the recipe); and the study for readers (`compeffdist publish-study RUN_DIR --out docs/study`: results and
efficiency tables with 95% intervals, the data-efficiency figure, the attribute map, the report, a README).
It reads a run folder and uploads nothing.
"""

from compeffdist_utils.export.export import ExportResult, export_run, summary_lines
from compeffdist_utils.export.run_files import ExportError, open_run
from compeffdist_utils.export.study_docs import StudyDocs, publish_study

__all__ = [
    "ExportError",
    "ExportResult",
    "StudyDocs",
    "export_run",
    "open_run",
    "publish_study",
    "summary_lines",
]
