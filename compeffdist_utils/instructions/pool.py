"""Step 4e of the method (docs/METHOD.md): the instruction pool, with near-duplicates removed.

Stage 03 runs five steps, each one batch of teacher requests and one module:

a. :func:`.analysis.generate_analysis_prompts` - open-ended analysis prompts per cluster;
b. :func:`.ideation.ideate_tasks` - single-text tasks of four types per cluster;
c. :func:`.standardisation.standardise_tasks` - a definition with the exact output format, and example
   pairs, per task;
d. :func:`.demonstrations.generate_demonstrations` - new example pairs in the style of real user texts;
e. :func:`build_pool` (here) - the instruction pool, with near-duplicates removed (and the kit's fixed
   tasks of :mod:`.kit_tasks` when ``instructions.kit_tasks`` names any).

Every step records its yield in the :class:`.funnel.Funnel`; an empty pool stops the stage with
:class:`.funnel.EmptyPoolError`, which names the step that lost everything.

A task-specific pool record's ``prompt`` is its standardised definition followed by up to
``prompt_demos`` demos as ``Input:`` / ``Output:`` examples (grounded demos first: they read like the
user texts the instruction will be applied to); stage 04 appends ``"\\n\\nInput: {text}"``. An analysis
record's ``prompt`` is the analysis prompt itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from compeffdist_utils.core.config import InstructionsParams
from compeffdist_utils.instructions.funnel import EmptyPoolError, Funnel
from compeffdist_utils.instructions.kit_tasks import kit_instructions
from compeffdist_utils.instructions.prompts import task_instruction_prompt

Embed = Callable[[list[str]], np.ndarray]


def near_duplicates(vectors: np.ndarray, threshold: float, block: int = 512) -> list[int | None]:
    """For each row, the index of an earlier KEPT row it duplicates (cosine >= threshold), else None.

    Greedy in order: a row is compared with the rows kept so far, so the first of a group of
    near-duplicates stays (a row's most similar kept row is named). ``vectors`` must be L2-normalised
    (``models.embed_texts`` returns them so). Similarities are computed a block of rows at a time.
    """
    n = len(vectors)
    kept = np.zeros(n, dtype=bool)
    dup_of: list[int | None] = [None] * n
    for start in range(0, n, block):
        stop = min(n, start + block)
        sims = vectors[start:stop] @ vectors[:stop].T
        for r, i in enumerate(range(start, stop)):
            row = sims[r, :i]
            candidates = np.flatnonzero((row >= threshold) & kept[:i])
            if candidates.size:
                dup_of[i] = int(candidates[np.argmax(row[candidates])])
            else:
                kept[i] = True
    return dup_of


def assemble_records(
    analysis: Sequence[dict[str, Any]],
    standardised: Sequence[dict[str, Any]],
    grounded: dict[tuple[Any, int], list[dict[str, str]]],
    prompt_demos: int,
) -> list[dict[str, Any]]:
    """Pool records before deduplication, in cluster order: analysis prompts, then tasks.

    A task's ``demos`` are its grounded demos followed by its standardised ones; its ``prompt`` is the
    definition plus the first ``prompt_demos`` of them (see the module docstring).
    """
    cluster_order = list(
        dict.fromkeys([a["cluster_id"] for a in analysis] + [t["cluster_id"] for t in standardised])
    )
    records = []
    for cid in cluster_order:
        for k, a in enumerate(x for x in analysis if x["cluster_id"] == cid):
            records.append(
                {
                    "instruction_id": f"c{cid}-a{k}",
                    "cluster_id": cid,
                    "task_name": "analysis",
                    "task_type": "analysis",
                    "prompt": a["prompt"],
                    "demos": [],
                    "_key": a["prompt"],
                }
            )
        for t in (x for x in standardised if x["cluster_id"] == cid):
            demos = grounded.get((cid, t["task_index"]), []) + t["demos"]
            prompt = task_instruction_prompt(
                t["definition"], [(d["input"], d["output"]) for d in demos[:prompt_demos]]
            )
            records.append(
                {
                    "instruction_id": f"c{cid}-t{t['task_index']}",
                    "cluster_id": cid,
                    "task_name": t["task_name"],
                    "task_type": t["task_type"],
                    "prompt": prompt,
                    "demos": demos,
                    "_key": t["definition"],
                }
            )
    return records


def build_pool(
    analysis: Sequence[dict[str, Any]],
    standardised: Sequence[dict[str, Any]],
    grounded: dict[tuple[Any, int], list[dict[str, str]]],
    ip: InstructionsParams,
    embed: Embed,
    funnel: Funnel,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The instruction pool and the removed near-duplicates; raises :class:`EmptyPoolError` when empty.

    Near-duplicates: the cosine similarity of the kit embedder's vectors of the instruction's core text
    (the analysis prompt, or the task definition without its demos) reaches ``dedup_threshold``; the
    earlier record (larger cluster, analysis before tasks) is kept. The kit's fixed tasks
    (``instructions.kit_tasks``) join after deduplication: they are never a duplicate of what was written.
    """
    records = assemble_records(analysis, standardised, grounded, ip.prompt_demos)
    step = funnel["dedup"]
    step.items_parsed = len(records)
    if not records:
        raise EmptyPoolError(_empty_message(funnel))
    vectors = np.asarray(embed([r["_key"] for r in records]), dtype=np.float32)
    pool, removed = [], []
    for r, dup in zip(records, near_duplicates(vectors, ip.dedup_threshold), strict=True):
        core = {k: v for k, v in r.items() if k != "_key"}
        if dup is None:
            pool.append(core)
        else:
            step.dropped["near_duplicate"] += 1
            removed.append({**core, "duplicate_of": records[dup]["instruction_id"]})
    step.items_kept = len(pool)
    pool += kit_instructions(ip.kit_tasks)
    funnel.pool = dict(sorted(Counter(r["task_type"] for r in pool).items()))
    return pool, removed


def _empty_message(funnel: Funnel) -> str:
    """Where each branch lost everything: analysis prompts, or tasks (ideation -> standardisation)."""
    where = []
    if funnel["analysis"].items_kept == 0:
        where.append("analysis prompts: step 'analysis' kept 0")
    task_step = next((s for s in ("ideation", "standardisation") if funnel[s].items_kept == 0), None)
    if task_step:
        where.append(f"task instructions: step {task_step!r} kept 0")
    return (
        "stage 03 built an empty instruction pool ("
        + "; ".join(where)
        + ").\nCounts per step:\n"
        + funnel.describe()
        + "\nLook at the responses in instructions/<step>.jsonl; a small teacher needs "
        "instructions.worked_example: true, a lower instructions.min_examples, or more max_new_tokens."
    )
