"""The run's distillation data as a Hugging Face dataset folder: Parquet files, one config for the whole
answered pool and one per selection, described by the card's YAML ``configs`` (:mod:`.dataset_card`).

- ``pool``: every answered sample of stage 04 (split ``train``) with its instruction, input text, teacher
  output, cluster, task type and stage 05's difficulty scores; stage 04's held-out samples, never trained
  on, are split ``heldout`` (no difficulty scores: stage 05 never scores them).
- ``selected_<selector>_b<budget>``: stage 05's selection, the data the distilled student trained on.
- ``grid_<selector>_b<budget>_s<seed>``: each trained point of stage 08's grid, selected again with the
  grid's own code and kept only when it gives the very samples the grid trained on (its ``selection_hash``
  in ``efficiency/results.jsonl``); a point that does not is left out and named in the card.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compeffdist_utils.core.config import SelectionParams
from compeffdist_utils.data_efficiency.grid import selection_hash
from compeffdist_utils.data_efficiency.points import BASE, SELECTORS, GridPoint, grid_params, point_params
from compeffdist_utils.data_efficiency.results import read_results, row_key
from compeffdist_utils.difficulty_selection.selection import select_samples
from compeffdist_utils.export.run_files import ExportError, RunFolder

SCORE_COLUMNS = ("rank", "ifd", "ppl", "ppl_uncond", "length", "n_tokens")
# (column, arrow type name, what it holds): the pool's schema, in order; the card lists it.
POOL_COLUMNS = (
    ("sample_id", "string", "the sample's id (instruction id + text id)"),
    ("instruction_id", "string", "the instruction (task) it instantiates"),
    ("cluster_id", "int64", "the analytical perspective (stage 02 cluster) the task was written for"),
    ("cluster", "string", "that cluster's exemplar attribute"),
    ("task_name", "string", "the task's name"),
    ("task_type", "string", "`analysis` (open-ended) or a standardised task type"),
    ("domain", "string", "the corpus domain of the input text"),
    ("text_id", "string", "the input text's id in the corpus"),
    ("prompt", "string", "the task's instruction without the input"),
    ("input", "string", "the user text the task is applied to"),
    ("instruction", "string", "what the teacher was asked: prompt, a blank line, `Input: ` + input"),
    ("output", "string", "the teacher's answer (the training target)"),
    ("teacher_model", "string", "the teacher that answered"),
    ("rank", "float64", "difficulty: the method's rank score (higher = harder)"),
    ("ifd", "float64", "difficulty: instruction-following difficulty, ppl / ppl_uncond"),
    ("ppl", "float64", "difficulty: the scorer's perplexity of the output given the instruction"),
    ("ppl_uncond", "float64", "difficulty: perplexity of the output alone"),
    ("length", "int64", "difficulty: output length in tokens, before truncation"),
    ("n_tokens", "int64", "output tokens scored (after truncation to difficulty.max_length)"),
)
SELECTION_COLUMNS = (
    ("selection_score", "float64", "the score the selector ranked by (null for random)"),
    ("group", "string", "the stratum it was selected in"),
    ("rank_in_group", "int64", "1 = hardest of its group (null for random)"),
    ("keep_prob", "float64", "soft selection's keep probability (null otherwise)"),
)


@dataclass
class Config:
    """One dataset config: its name, what it is, and its splits' rows."""

    name: str
    description: str
    splits: dict[str, list[dict[str, Any]]]
    selector: str | None = None
    budget: float | None = None
    seed: int | None = None

    def n_rows(self) -> dict[str, int]:
        return {split: len(rows) for split, rows in self.splits.items()}


@dataclass
class DatasetContent:
    """Every config of the export, and the grid points that could not be reproduced (named in the card)."""

    configs: list[Config]
    left_out: list[str] = field(default_factory=list)


def selector_name(sel: SelectionParams) -> str:
    """The grid's name for a selection setting (stage 08 ``SELECTORS``), e.g. ``rank_hard``."""
    if sel.method == "random":
        return "random" if sel.stratify == "full" else "random_inprompt"
    for name, (method, score) in SELECTORS.items():
        if (method, score) == (sel.method, sel.score) and not name.startswith("random"):
            return name
    return f"{sel.score}_{sel.method}"


def pool_rows(run: RunFolder, records: list[dict[str, Any]], scored: bool) -> list[dict[str, Any]]:
    """Stage 04 records as pool rows: joined with the corpus text, the cluster name and (``scored``) stage
    05's scores; a sample whose text or score is missing is an error naming the file."""
    texts = {t["text_id"]: t["text"] for t in run.jsonl("corpus/texts.jsonl")}
    clusters = {c["cluster_id"]: c.get("exemplar") for c in run.jsonl("clusters/clusters.jsonl")}
    scores = {str(s["sample_id"]): s for s in run.jsonl("difficulty/scores.jsonl")} if scored else {}
    rows = []
    for rec in records:
        sid = str(rec.get("sample_id"))
        if rec.get("text_id") not in texts:
            raise ExportError(f"sample {sid}: its text {rec.get('text_id')!r} is not in corpus/texts.jsonl")
        if scored and sid not in scores:
            raise ExportError(f"sample {sid} of distill/dataset.jsonl has no row in difficulty/scores.jsonl")
        joined = {
            "sample_id": sid,
            "input": texts[rec["text_id"]],
            "cluster": clusters.get(rec.get("cluster_id")),
            **{k: scores.get(sid, {}).get(k) for k in SCORE_COLUMNS},
        }
        rows.append({name: joined[name] if name in joined else rec.get(name) for name, _, _ in POOL_COLUMNS})
    return rows


def _selection_rows(pool: dict[str, dict[str, Any]], selected: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        pool[str(r["sample_id"])]
        | {
            "selection_score": r.get("score"),
            **{k: r.get(k) for k in ("group", "rank_in_group", "keep_prob")},
        }
        for r in selected
    ]


def stage05_config(run: RunFolder, pool: dict[str, dict[str, Any]]) -> Config:
    sel = run.params.selection
    selected = run.jsonl("selection/selected.jsonl")
    unknown = [str(r.get("sample_id")) for r in selected if str(r.get("sample_id")) not in pool]
    if unknown:
        raise ExportError(
            f"selection/selected.jsonl names samples not in distill/dataset.jsonl: {unknown[:5]}"
        )
    name = selector_name(sel)
    return Config(
        f"selected_{name}_b{sel.budget:g}",
        f"stage 05's selection ({name}, budget {sel.budget:g}): the data the distilled student trained on",
        {"train": _selection_rows(pool, selected)},
        name,
        sel.budget,
        sel.seed,
    )


def grid_configs(
    run: RunFolder, records: list[dict[str, Any]], pool: dict[str, dict[str, Any]]
) -> tuple[list[Config], list[str]]:
    """One config per trained grid point that the grid's selection code reproduces; the others named."""
    if not run.has("efficiency/results.jsonl"):
        return [], []
    scores = run.jsonl("difficulty/scores.jsonl")
    latest: dict[tuple[str, float, int], dict[str, Any]] = {}
    for row in read_results(run.path):
        if row.get("selector") != BASE and not row.get("skipped"):
            latest[row_key(row)] = row  # the file is appended: the last line of a point is its latest
    gparams, configs, left_out = grid_params(run.params), [], []
    for (selector, budget, seed), row in latest.items():
        point = GridPoint(selector, budget, seed)
        selected, _ = select_samples(records, scores, point_params(gparams, point).selection)
        if selection_hash(selected) != row.get("selection_hash"):
            left_out.append(f"{point.slug} (selecting again gave other samples than it trained on)")
            continue
        configs.append(
            Config(
                f"grid_{selector}_b{budget:g}_s{seed}",
                f"stage 08's grid point {selector} at budget {budget:g}, seed {seed}",
                {"train": _selection_rows(pool, selected)},
                selector,
                budget,
                seed,
            )
        )
    return configs, left_out


def dataset_content(run: RunFolder) -> DatasetContent:
    """The pool and every selection of ``run``, read from its files."""
    records = run.jsonl("distill/dataset.jsonl")
    if not records:
        raise ExportError(f"{run.path / 'distill/dataset.jsonl'} is empty: stage 04 answered no sample")
    train = pool_rows(run, records, scored=True)
    heldout = pool_rows(run, run.jsonl("distill/heldout.jsonl"), scored=False)
    splits = {"train": train, **({"heldout": heldout} if heldout else {})}
    pool = Config("pool", "every answered sample, with its difficulty scores", splits)
    by_id = {r["sample_id"]: r for r in train}
    grid, left_out = grid_configs(run, records, by_id)
    return DatasetContent([pool, stage05_config(run, by_id), *grid], left_out)


def arrow_schema(columns: tuple[tuple[str, str, str], ...]) -> Any:
    import pyarrow as pa  # deferred: only when writing Parquet

    return pa.schema([(name, getattr(pa, kind)()) for name, kind, _ in columns])


def write_parquet(content: DatasetContent, out: Path) -> dict[str, dict[str, str]]:
    """Each config's splits as ``<config>/<split>.parquet`` under ``out``; returns config -> split -> path."""
    import pyarrow as pa  # deferred: only when writing Parquet
    import pyarrow.parquet as pq  # deferred: only when writing Parquet

    files: dict[str, dict[str, str]] = {}
    for cfg in content.configs:
        columns = POOL_COLUMNS if cfg.name == "pool" else POOL_COLUMNS + SELECTION_COLUMNS
        schema = arrow_schema(columns)
        for split, rows in cfg.splits.items():
            rel = f"data/{cfg.name}/{split}.parquet"
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(rows, schema=schema), out / rel)
            files.setdefault(cfg.name, {})[split] = rel
    return files
