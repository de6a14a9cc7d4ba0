"""Sharing what a run made (`compeffdist export RUN_DIR --out DIR`): the distillation data as a Hugging Face
dataset folder (Parquet files and a dataset card whose `configs` are the pool and each selection) and the
distilled student as a standalone transformers folder with a model card (SentiBench scores with CIs and
the recipe). It reads a finished run folder and uploads nothing.
"""

from compeffdist_utils.export.export import ExportResult, export_run, summary_lines
from compeffdist_utils.export.run_files import ExportError, open_run

__all__ = ["ExportError", "ExportResult", "export_run", "open_run", "summary_lines"]
