"""Reading SentiBench from disk, fetching it, and the flagged fallback when it is absent.

SentiBench lives in ``../shared/sentibench`` here (the ``datasets/`` folder of
HITSZ-HLT/Sentiment-Distillation). Without it (``evaluation.sentibench_dir`` unset, or naming a folder
that does not exist) :func:`load_for_run` builds the flagged fallback from stage 00's labelled
holdout; a folder that exists but is incomplete is an error, never a silent fallback.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compeffdist_utils.core.config import SENTIBENCH_DATASETS
from compeffdist_utils.core.io import DataFileError, read_jsonl
from compeffdist_utils.sentibench.metrics import normalise_label
from compeffdist_utils.sentibench.tasks import (
    FALLBACK_GROUP,
    SENTIMENT_Q,
    TASKS,
    BenchDataset,
    Example,
    classification_spec,
    to_example,
)

SENTIBENCH_REPO = "https://github.com/HITSZ-HLT/Sentiment-Distillation"


class SentiBenchError(FileNotFoundError):
    """SentiBench is missing, incomplete or could not be fetched; the message names the folder."""


# -- loading --------------------------------------------------------------------------------------------


def resolve_sentibench_dir(path: str | Path, root: Path | None = None) -> Path:
    """The ``datasets/`` folder: accepts it directly or a clone of the repository that contains it.

    Relative paths are taken from ``root`` (the project root; notebooks run from ``notebooks/``).
    """
    p = Path(path).expanduser()
    if not p.is_absolute() and root is not None:
        p = root / p
    if (p / "datasets" / "sc").is_dir():
        p = p / "datasets"
    return Path(os.path.abspath(p))  # normalises "..", keeps symlinks as the user named them


def _how_to_get(folder: Path) -> str:
    return (
        f"get SentiBench with `compeffdist fetch-sentibench` (a git clone of {SENTIBENCH_REPO}) and set "
        f"evaluation.sentibench_dir to its datasets/ folder, or unset it for the fallback; looked in {folder}"
    )


def check_sentibench(folder: Path, names: Sequence[str]) -> None:
    """Raise :class:`SentiBenchError` listing every missing file, so one fix repairs the folder."""
    if not folder.is_dir():
        raise SentiBenchError(f"SentiBench folder not found: {folder}; " + _how_to_get(folder))
    missing = [
        f"{n}/{split}.json"
        for n in names
        for split in ("train", "test")
        if not (folder / n / f"{split}.json").is_file()
    ]
    if missing:
        raise SentiBenchError(
            f"SentiBench folder {folder} is incomplete; missing: {', '.join(missing)}; " + _how_to_get(folder)
        )


def _read_json_list(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))  # the files start with a BOM
    except json.JSONDecodeError as err:
        raise DataFileError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None
    if not isinstance(data, list):
        raise DataFileError(f"{path}: expected a JSON list of records")
    return data


def load_dataset(folder: Path, name: str) -> BenchDataset:
    """One SentiBench dataset: its test examples and its demo pool (train.json)."""
    if name not in TASKS:
        raise ValueError(f"unknown SentiBench dataset {name!r}; available: {list(TASKS)}")
    check_sentibench(folder, [name])
    splits = {}
    for split in ("test", "train"):
        path = folder / name / f"{split}.json"
        recs = _read_json_list(path)
        try:
            splits[split] = [to_example(name, r, f"{split}:{i}") for i, r in enumerate(recs)]
        except (KeyError, TypeError, AttributeError) as err:
            raise DataFileError(f"{path}: a record lacks the fields {name} needs ({err!r})") from None
    return BenchDataset(TASKS[name], splits["test"], splits["train"], "sentibench", folder / name)


def load_sentibench(
    sentibench_dir: str | Path, names: Sequence[str] = SENTIBENCH_DATASETS, root: Path | None = None
) -> list[BenchDataset]:
    folder = resolve_sentibench_dir(sentibench_dir, root)
    check_sentibench(folder, names)
    return [load_dataset(folder, n) for n in names]


def load_fallback(
    holdout_path: Path, shots: int, demo_fraction: float = 0.25, seed: int = 42
) -> tuple[list[BenchDataset], dict[str, int]]:
    """Sentiment-classification stand-ins built from stage 00's labelled held-out texts.

    One dataset per domain (``fallback/imdb``, ``fallback/rotten_tomatoes``, ``fallback/tweets``), the
    label set read from the data. A seeded ``demo_fraction`` of each domain (at least ``shots`` texts)
    becomes the demo pool; the rest is the test set, so no test text is its own demo. Returns the
    datasets and the counts of records skipped for a missing text or label.
    """
    if not holdout_path.is_file():
        raise DataFileError(
            f"the SentiBench fallback needs {holdout_path} (stage 00_environment_and_corpus writes it); "
            "run stage 00 or set evaluation.sentibench_dir"
        )
    by_domain: dict[str, list[dict[str, Any]]] = {}
    skipped = {"no_text": 0, "no_label": 0}
    for rec in read_jsonl(holdout_path):
        if not str(rec.get("text") or "").strip():
            skipped["no_text"] += 1
        elif not str(rec.get("label") or "").strip():
            skipped["no_label"] += 1
        else:
            by_domain.setdefault(str(rec.get("domain") or "unknown"), []).append(rec)
    out = []
    for domain in sorted(by_domain):
        recs = sorted(by_domain[domain], key=lambda r: str(r.get("text_id")))
        random.Random(f"fallback|{domain}|{seed}").shuffle(recs)
        n_demo = max(shots, round(demo_fraction * len(recs)))
        if len(recs) - n_demo < 1:
            raise DataFileError(
                f"{holdout_path}: domain {domain!r} has {len(recs)} labelled texts, too few for {shots} demos "
                "plus a test set; raise corpus.holdout_per_domain"
            )
        examples = [
            Example(
                uid=str(r.get("text_id", i)),
                sentence=str(r["text"]),
                gold=normalise_label(str(r["label"])),
                raw={"sentence": str(r["text"]), "label": str(r["label"])},
            )
            for i, r in enumerate(recs)
        ]
        labels = tuple(sorted({e.gold for e in examples}))
        if len(labels) < 2:
            raise DataFileError(
                f"{holdout_path}: domain {domain!r} has a single label {labels}; nothing to classify"
            )
        spec = classification_spec(
            f"fallback/{domain}", FALLBACK_GROUP, "Sentiment analysis", SENTIMENT_Q, labels
        )
        out.append(BenchDataset(spec, examples[n_demo:], examples[:n_demo], "fallback", holdout_path))
    if not out:
        raise DataFileError(f"{holdout_path}: no labelled texts for the fallback evaluation")
    return out, skipped


@dataclass
class Benchmark:
    """What stage 07 evaluates on, and whether it is the real benchmark."""

    datasets: list[BenchDataset]
    fallback: bool
    note: str
    skipped: dict[str, int] = field(default_factory=dict)


def load_for_run(
    sentibench_dir: str | None, names: Sequence[str], shots: int, run_dir: Path, root: Path | None = None
) -> Benchmark:
    """SentiBench when its folder is there, else the clearly flagged fallback on ``corpus/holdout.jsonl``.

    A folder that exists but lacks a requested dataset is an error (a half-copied benchmark must not
    pass for the real one). A folder that is not there at all (e.g. ``params/tiny.yaml``'s
    ``../shared/sentibench`` on a machine without it) means "SentiBench is absent": the fallback runs and
    its note, shown in the notebook and the report, says so and why.
    """
    why = "evaluation.sentibench_dir is not set"
    if sentibench_dir:
        folder = resolve_sentibench_dir(sentibench_dir, root)
        if folder.exists():
            ds = load_sentibench(folder, names, root)
            return Benchmark(ds, False, f"SentiBench from {folder}")
        why = f"the SentiBench folder {folder} (evaluation.sentibench_dir) does not exist"
    ds, skipped = load_fallback(run_dir / "corpus" / "holdout.jsonl", shots)
    note = (
        f"FALLBACK: {why}, so these scores are NOT SentiBench. They come from "
        f"{sum(len(d.test) for d in ds)} held-out labelled corpus texts ({', '.join(d.name for d in ds)}) with the "
        "same 4-shot protocol. Set evaluation.sentibench_dir to the SentiBench datasets/ folder for the real benchmark."
    )
    return Benchmark(ds, True, note, skipped)


def fetch_sentibench(dest: str | Path) -> Path:
    """Clone HITSZ-HLT/Sentiment-Distillation into ``dest`` and return its checked ``datasets/`` folder.

    Idempotent: a ``dest`` that already holds the datasets is only checked.
    """
    dest = Path(dest).expanduser()
    if not (dest / "datasets").is_dir():
        git = shutil.which("git")
        if git is None:
            raise SentiBenchError(f"git is not installed; clone {SENTIBENCH_REPO} into {dest} by hand")
        if dest.exists() and any(dest.iterdir()):
            raise SentiBenchError(
                f"{dest} exists, is not empty and holds no datasets/ folder; choose another folder"
            )
        try:
            proc = subprocess.run(
                [git, "clone", "--depth", "1", SENTIBENCH_REPO, str(dest)],
                capture_output=True,
                text=True,
                timeout=900,
            )
        except subprocess.TimeoutExpired:
            raise SentiBenchError(
                f"git clone of {SENTIBENCH_REPO} into {dest} timed out after 15 minutes"
            ) from None
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise SentiBenchError(
                f"git clone of {SENTIBENCH_REPO} into {dest} failed (exit {proc.returncode}): {' | '.join(tail)}; "
                "check the network, or clone it elsewhere and set evaluation.sentibench_dir"
            )
    folder = dest / "datasets"
    check_sentibench(folder, SENTIBENCH_DATASETS)
    return folder


# -- test subsets ---------------------------------------------------------------------------------


def test_subset(ds: BenchDataset, n_test: int | None, seed: int) -> list[Example]:
    """A seeded subset in file order, the same for every model and demo seed (``None`` = all)."""
    if n_test is None or n_test >= len(ds.test):
        return list(ds.test)
    idx = sorted(random.Random(f"{ds.name}|subset|{seed}").sample(range(len(ds.test)), n_test))
    return [ds.test[i] for i in idx]
