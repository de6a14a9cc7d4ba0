"""``compeffdist export RUN_DIR --out DIR``: what a finished run made, ready to share, without uploading.

``DIR/dataset/`` is a Hugging Face dataset folder (:mod:`.dataset`, :mod:`.dataset_card`) and
``DIR/model/`` the distilled student as a standalone transformers folder with its model card
(:mod:`.model`, :mod:`.model_card`). Each is written into a temporary folder beside its place and
renamed into place when complete, so an interrupted export never leaves a half folder that loads.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from compeffdist_utils.core.io import _umask as current_umask
from compeffdist_utils.core.io import atomic_write_text
from compeffdist_utils.export.dataset import DatasetContent, dataset_content, write_parquet
from compeffdist_utils.export.dataset_card import dataset_card
from compeffdist_utils.export.model import ModelExport, export_model
from compeffdist_utils.export.model_card import model_card
from compeffdist_utils.export.provenance import Provenance, run_provenance
from compeffdist_utils.export.run_files import ExportError, RunFolder, open_run

T = TypeVar("T")


@dataclass
class ExportResult:
    """Where the export went and what it holds (the CLI prints it)."""

    out: Path
    provenance: Provenance
    dataset: DatasetContent | None = None
    model: ModelExport | None = None
    written: list[Path] = field(default_factory=list)


def into_place(target: Path, overwrite: bool, write: Callable[[Path], T]) -> T:
    """Run ``write(tmp)`` on a fresh folder beside ``target`` and rename it into place when it returns."""
    if target.exists() and not overwrite:
        raise ExportError(f"{target} already exists; pass --overwrite to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        made = write(tmp)
        _readable_as_umask_allows(tmp)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
        return made
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _readable_as_umask_allows(folder: Path) -> None:
    """Give the folder and its files the modes any new file gets (mkdtemp and some writers make them 0700
    and 0600), so that whoever the export is for can read it."""
    mask = current_umask()
    for path in [folder, *folder.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


def write_dataset_folder(run: RunFolder, prov: Provenance, folder: Path) -> DatasetContent:
    """Parquet files and the dataset card into ``folder``."""
    content = dataset_content(run)
    files = write_parquet(content, folder)
    atomic_write_text(folder / "README.md", dataset_card(content, files, prov))
    return content


def write_model_folder(run: RunFolder, prov: Provenance, folder: Path) -> ModelExport:
    """The standalone student and its model card into ``folder``."""
    made = export_model(run, folder)
    atomic_write_text(folder / "README.md", model_card(run, made, prov))
    return made


def export_run(
    run_dir: str | Path, out: str | Path, *, dataset: bool = True, model: bool = True, overwrite: bool = False
) -> ExportResult:
    """Export ``run_dir`` into ``out``/dataset and ``out``/model; every input is checked before writing."""
    run = open_run(run_dir)
    out = Path(out).expanduser().resolve()
    prov = run_provenance(run, run.jsonl("corpus/texts.jsonl"))
    result = ExportResult(out, prov)
    if dataset:
        result.dataset = into_place(out / "dataset", overwrite, lambda d: write_dataset_folder(run, prov, d))
        result.written.append(out / "dataset")
    if model:
        result.model = into_place(out / "model", overwrite, lambda d: write_model_folder(run, prov, d))
        result.written.append(out / "model")
    return result


def summary_lines(result: ExportResult) -> list[str]:
    """What the CLI prints: each folder, its configs or weights, and the commands to load and upload."""
    lines = [f"exported run {result.provenance.run_name!r} into {result.out}"]
    if result.dataset is not None:
        lines.append(f"  dataset/  ({len(result.dataset.configs)} configs)")
        for cfg in result.dataset.configs:
            rows = ", ".join(f"{s}: {n}" for s, n in cfg.n_rows().items())
            lines.append(f"    {cfg.name:<34} {rows}")
        for slug in result.dataset.left_out:
            lines.append(f"    left out: {slug}")
    if result.model is not None:
        m = result.model
        lines.append(f"  model/    {m.kind}; {m.n_params / 1e6:.1f} M parameters, {m.dtype}; base {m.base}")
    lines += [
        "load:   datasets.load_dataset(PATH_TO/dataset[, CONFIG]); "
        "transformers.AutoModelForCausalLM.from_pretrained(PATH_TO/model)",
        "share (nothing was uploaded): hf upload NAME/REPO PATH_TO/dataset . --repo-type dataset; "
        "hf upload NAME/REPO PATH_TO/model .",
    ]
    return lines
