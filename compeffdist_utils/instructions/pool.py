"""Stage 03: instruction construction per analytical perspective (method.md, stage 4 a-e).

The stage runs five steps, each one batch of teacher requests:

a. :func:`generate_analysis_prompts` - open-ended analysis prompts per cluster;
b. :func:`ideate_tasks` - single-text tasks of four types per cluster;
c. :func:`standardise_tasks` - a definition with the exact output format, and example pairs, per task;
d. :func:`generate_demonstrations` - new example pairs written in the style of real user texts;
e. :func:`build_pool` - the instruction pool, with near-duplicates removed.

Every step records in a :class:`Funnel` how many requests it sent, how many answers parsed, how many
items it read and kept, and why the others were dropped; the funnel is written to
``instructions/funnel.json``. A teacher that answers junk costs counted drops, never a crash - but an
empty pool stops the stage with :class:`EmptyPoolError`, which names the step that lost everything.

A task-specific pool record's ``prompt`` is its standardised definition followed by up to
``prompt_demos`` demos as ``Input:`` / ``Output:`` examples (grounded demos first: they read like the
user texts the instruction will be applied to); stage 04 appends ``"\\n\\nInput: {text}"``. An analysis
record's ``prompt`` is the analysis prompt itself.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from compeffdist_utils.core.config import DecodingParams, InstructionsParams
from compeffdist_utils.instructions.parsing import (
    analysis_item_problem,
    assign_task_type,
    clean_demo_pair,
    clean_pair,
    compares_two_texts,
    echoes_worked_example,
    extract_json_list,
    normalise_text,
    parse_io_pairs,
    parse_numbered_list,
    parse_standardisation,
    read_task_item,
    task_statement,
)
from compeffdist_utils.instructions.prompts import (
    ANALYSIS_EXAMPLE,
    DEMONSTRATION_EXAMPLE,
    IDEATION_EXAMPLE,
    STANDARDISATION_EXAMPLE,
    analysis_prompt,
    demonstration_prompt,
    ideation_prompt,
    standardisation_prompt,
    task_instruction_prompt,
)
from compeffdist_utils.teacher.backends import ChatRequest, Messages, conversation

TOP_DESCRIBED = 5  # method.md 4a: descriptions of the cluster's top-5 attributes
REFERENCE_MAX_CHARS = 500  # style references are cut (at a word) to keep demo prompts short
STEPS = ("analysis", "ideation", "standardisation", "demonstrations", "dedup")


class Teacher(Protocol):
    """What the stage needs from a teacher: :meth:`backends.TeacherBackend.generate` (answers in order)."""

    def generate(self, requests: Sequence[ChatRequest], desc: str = ...) -> list[str]: ...


Embed = Callable[[list[str]], np.ndarray]


class EmptyPoolError(RuntimeError):
    """Stage 03 kept no instruction at all; the message names the step that dropped everything."""


# -- bookkeeping -----------------------------------------------------------------------------------------


@dataclass
class StepCounts:
    """One funnel step: requests sent, answers parsed, items read and kept, drops by reason."""

    requests: int = 0
    answers_parsed: int = 0
    items_parsed: int = 0
    items_kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "answers_parsed": self.answers_parsed,
            "items_parsed": self.items_parsed,
            "items_kept": self.items_kept,
            "dropped": dict(sorted(self.dropped.items())),
            "notes": dict(sorted(self.notes.items())),
        }


@dataclass
class Funnel:
    """The yield of every step, in order; ``pool`` holds the final counts per task type."""

    steps: dict[str, StepCounts] = field(default_factory=lambda: {s: StepCounts() for s in STEPS})
    pool: dict[str, int] = field(default_factory=dict)

    def __getitem__(self, step: str) -> StepCounts:
        return self.steps[step]

    def as_dict(self) -> dict[str, Any]:
        return {**{k: v.as_dict() for k, v in self.steps.items()}, "pool": self.pool}

    def describe(self) -> str:
        """One line per step, for error messages and logs."""
        lines = []
        for name, c in self.steps.items():
            drops = ", ".join(f"{k} {v}" for k, v in sorted(c.dropped.items())) or "none"
            lines.append(
                f"  {name}: {c.requests} requests, {c.answers_parsed} answers parsed, "
                f"{c.items_parsed} items parsed, {c.items_kept} kept (dropped: {drops})"
            )
        return "\n".join(lines)


def _ask(
    teacher: Teacher,
    chats: list[Messages],
    decoding: DecodingParams,
    desc: str,
    tags: list[str] | None = None,
) -> list[str]:
    """The teacher's answers, without a call when an earlier step left nothing to ask about."""
    if not chats:
        return []
    tags = tags or [""] * len(chats)
    return teacher.generate(
        [ChatRequest(m, decoding, t) for m, t in zip(chats, tags, strict=True)], desc=desc
    )


# -- inputs ----------------------------------------------------------------------------------------------


def select_clusters(clusters: Sequence[dict[str, Any]], max_clusters: int | None) -> list[dict[str, Any]]:
    """The clusters to build instructions for: largest total count first, at most ``max_clusters``."""
    ordered = sorted(clusters, key=lambda c: (-int(c["total_count"]), str(c["cluster_id"])))
    usable = [c for c in ordered if c.get("attributes")]
    return usable[:max_clusters] if max_clusters else usable


def _by_count(cluster: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(cluster["attributes"], key=lambda a: (-int(a["count"]), a["attr"]))


# -- (a) analysis prompts --------------------------------------------------------------------------------


def analysis_chats(clusters: Sequence[dict[str, Any]], ip: InstructionsParams) -> list[Messages]:
    """One analysis-prompt request per cluster (also counted by :mod:`compeffdist_utils.plan`)."""
    example = ANALYSIS_EXAMPLE if ip.worked_example else None
    chats = []
    for c in clusters:
        attrs = _by_count(c)
        top = [(a["attr"], a.get("top_description") or "") for a in attrs[:TOP_DESCRIBED]]
        request = analysis_prompt([a["attr"] for a in attrs], top, ip.analysis_per_cluster)
        chats.append(conversation(request, example))
    return chats


def ideation_chats(clusters: Sequence[dict[str, Any]], ip: InstructionsParams) -> list[Messages]:
    """One task-ideation request per cluster, from its most frequent attribute."""
    example = IDEATION_EXAMPLE if ip.worked_example else None
    tops = [_by_count(c)[0] for c in clusters]
    return [conversation(ideation_prompt(a["attr"], a.get("top_description") or ""), example) for a in tops]


def generate_analysis_prompts(
    teacher: Teacher, clusters: Sequence[dict[str, Any]], ip: InstructionsParams, funnel: Funnel
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Ask for analysis prompts per cluster; return (kept prompts, one log record per cluster).

    An answer counts as parsed when it has at least one numbered line (else ``unparsed_answer``). Items
    are dropped when shorter than four words, when they are neither a question nor a request, when they
    repeat the worked example (:func:`instruction_parsing.analysis_item_problem`), when they repeat an
    earlier item of the same cluster, or beyond ``analysis_per_cluster``.
    """
    step = funnel["analysis"]
    chats = analysis_chats(clusters, ip)
    answers = _ask(teacher, chats, ip.analysis, "03a analysis prompts")
    step.requests += len(chats)
    kept_all, log = [], []
    for c, answer in zip(clusters, answers, strict=True):
        items = parse_numbered_list(answer)
        step.answers_parsed += bool(items)
        step.items_parsed += len(items)
        kept: list[str] = []
        seen: set[str] = set()  # normalised kept items, grown as items are kept (no rebuild per item)
        drops: list[dict[str, str]] = []
        for item in items:
            reason = analysis_item_problem(item)
            if reason is None and normalise_text(item) in seen:
                reason = "duplicate_in_cluster"
            if reason is None and len(kept) >= ip.analysis_per_cluster:
                reason = "over_limit"
            if reason:
                step.dropped[reason] += 1
                drops.append({"item": item, "reason": reason})
            else:
                kept.append(item)
                seen.add(normalise_text(item))
        if not items:
            step.dropped["unparsed_answer"] += 1
        step.items_kept += len(kept)
        kept_all += [{"cluster_id": c["cluster_id"], "prompt": p} for p in kept]
        log.append({"cluster_id": c["cluster_id"], "response": answer, "kept": kept, "dropped": drops})
    return kept_all, log


# -- (b) task ideation -----------------------------------------------------------------------------------


def ideate_tasks(
    teacher: Teacher, clusters: Sequence[dict[str, Any]], ip: InstructionsParams, funnel: Funnel
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Ask for a JSON task list per cluster from its most frequent attribute; return (tasks, log).

    Each task gets a ``task_type`` (see :func:`instruction_parsing.assign_task_type`; the funnel notes
    where types came from). Dropped: items that are not objects or lack a name or description, echoes of
    the worked example, a repeated task name within the cluster, and tasks beyond
    ``max_tasks_per_cluster``. An answer with no readable JSON list counts as ``unparsed_answer``.
    """
    step = funnel["ideation"]
    tops = [_by_count(c)[0] for c in clusters]
    chats = ideation_chats(clusters, ip)
    answers = _ask(teacher, chats, ip.ideation, "03b task ideation")
    step.requests += len(chats)
    tasks, log = [], []
    for c, top, answer in zip(clusters, tops, answers, strict=True):
        parsed = extract_json_list(answer)
        step.notes[f"json_{parsed.status}"] += 1
        if parsed.status == "failed":
            step.dropped["unparsed_answer"] += 1
        else:
            step.answers_parsed += 1
        step.items_parsed += len(parsed.items)
        kept: list[dict[str, Any]] = []
        names: set[str] = set()  # lower-cased names of the kept tasks
        drops: list[dict[str, Any]] = []
        for raw in parsed.items:
            task, reason = read_task_item(raw)
            if task and task["task_name"].lower() in names:
                task, reason = None, "duplicate_in_cluster"
            if task and ip.max_tasks_per_cluster and len(kept) >= ip.max_tasks_per_cluster:
                task, reason = None, "over_limit"
            if task is None:
                step.dropped[str(reason)] += 1
                drops.append({"item": raw, "reason": reason})
                continue
            task_type, source = assign_task_type(
                task["task_name"], task["task_description"], task["task_type"]
            )
            step.notes[f"type_from_{source}"] += 1
            names.add(task["task_name"].lower())
            kept.append(
                {
                    "cluster_id": c["cluster_id"],
                    "task_index": len(kept),
                    "task_name": task["task_name"],
                    "task_description": task["task_description"],
                    "task_type": task_type,
                    "type_source": source,
                    "attribute": top["attr"],
                }
            )
        step.items_kept += len(kept)
        tasks += kept
        log.append(
            {
                "cluster_id": c["cluster_id"],
                "attribute": top["attr"],
                "response": answer,
                "json_status": parsed.status,
                "tasks": kept,
                "dropped": drops,
            }
        )
    return tasks, log


# -- (c) standardisation -----------------------------------------------------------------------------------


def standardise_tasks(
    teacher: Teacher, tasks: Sequence[dict[str, Any]], ip: InstructionsParams, funnel: Funnel
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rewrite each task into a definition with examples; return (standardised tasks, log).

    Examples are cleaned like demonstrations (:func:`instruction_parsing.clean_pair`: quotes, first
    paragraph of the output, JSON brackets); those left empty, whose input repeats the worked example's,
    or whose input repeats an earlier example's are discarded first. A task is then dropped when its
    answer has no definition (``no_definition``) or no example left (``no_examples``), when the
    definition's task statement (the part before "Output format") repeats the worked example's, when it works on two texts (``two_text_task``, see
    :func:`instruction_parsing.compares_two_texts`), or when fewer than ``min_examples`` distinct examples
    remain (``too_few_examples``). The method asks for at least 8; tiny params ask for fewer because a
    135M teacher rarely writes 8 before its token limit. Kept tasks keep their first ``max_demos``.
    """
    step = funnel["standardisation"]
    example = STANDARDISATION_EXAMPLE if ip.worked_example else None
    chats = [
        conversation(
            standardisation_prompt(t["task_name"], t["task_type"], t["task_description"], ip.min_examples),
            example,
        )
        for t in tasks
    ]
    answers = _ask(teacher, chats, ip.standardisation, "03c standardisation")
    step.requests += len(chats)
    kept, log = [], []
    for task, answer in zip(tasks, answers, strict=True):
        std = parse_standardisation(answer)
        unique: dict[str, tuple[str, str]] = {}  # by normalised input: a repeated input is one example
        for i, o in (clean_pair(i, o) for i, o in std.examples):
            if i and o and not echoes_worked_example(i):
                unique.setdefault(normalise_text(i), (i, o))
        examples = list(unique.values())
        step.notes["examples_parsed"] += len(std.examples)
        step.notes["examples_dropped_empty_echo_or_repeat"] += len(std.examples) - len(examples)
        step.answers_parsed += bool(std.definition and std.examples)
        step.items_parsed += 1
        reason = None
        if not std.definition:
            reason = "no_definition"
        elif echoes_worked_example(task_statement(std.definition)):
            reason = "echoes_worked_example"
        elif not examples:
            reason = "no_examples"
        elif compares_two_texts(std.definition, examples):
            reason = "two_text_task"
        elif len(examples) < ip.min_examples:
            reason = "too_few_examples"
        record = {**task, "definition": std.definition, "n_examples": len(examples), "response": answer}
        if reason:
            step.dropped[reason] += 1
            log.append({**record, "status": reason})
            continue
        demos = [{"input": i, "output": o} for i, o in examples[: ip.max_demos]]
        step.items_kept += 1
        kept.append({**{k: v for k, v in record.items() if k != "response"}, "demos": demos})
        log.append({**record, "status": "kept"})
    return kept, log


# -- (d) demonstrations grounded in real text -------------------------------------------------------------


def _cut(text: str, limit: int = REFERENCE_MAX_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."


def generate_demonstrations(
    teacher: Teacher,
    tasks: Sequence[dict[str, Any]],
    user_texts: Sequence[str],
    ip: InstructionsParams,
    funnel: Funnel,
) -> tuple[dict[tuple[Any, int], list[dict[str, str]]], list[dict[str, Any]]]:
    """Ask for new demos in the style of real texts; return ({(cluster_id, task_index): demos}, log).

    ``demo_requests_per_task`` requests per task, each showing 1-2 of the task's demos and 2 random user
    texts (drawn with a generator seeded by ``instructions.demos.seed``, the cluster and the task, so adding a task does not
    change the draws of the others). Only answers that parse into exactly two pairs are used
    (``answer_not_two_pairs`` otherwise); their pairs are cleaned by
    :func:`instruction_parsing.clean_demo_pair`, and a pair whose input repeats an earlier one of the
    same task is dropped as ``duplicate``.
    """
    step = funnel["demonstrations"]
    if ip.demo_requests_per_task == 0 or not user_texts:
        step.notes["skipped"] += 1
        return {}, []
    example = DEMONSTRATION_EXAMPLE if ip.worked_example else None
    chats, tags, meta = [], [], []
    for t in tasks:
        rng = random.Random(f"{ip.demos.seed}|{t['cluster_id']}|{t['task_index']}|{t['task_name']}")
        for k in range(ip.demo_requests_per_task):
            shown = rng.sample(t["demos"], min(len(t["demos"]), rng.randint(1, 2)))
            refs = [_cut(x) for x in rng.sample(list(user_texts), min(2, len(user_texts)))]
            request = demonstration_prompt(t["definition"], [(d["input"], d["output"]) for d in shown], refs)
            chats.append(conversation(request, example))
            tags.append(f"demo{k}")  # repeats of one prompt stay separate samples
            meta.append((t, k, shown, refs))
    answers = _ask(teacher, chats, ip.demos, "03d demonstrations", tags)
    step.requests += len(chats)
    grounded: dict[tuple[Any, int], list[dict[str, str]]] = {}
    # Per task, the normalised inputs of its demos and of the pairs kept so far: one set grown as pairs
    # are kept, instead of re-normalising every earlier demo for each candidate pair.
    seen_inputs: dict[tuple[Any, int], set[str]] = {}
    log = []
    for (t, k, shown, refs), answer in zip(meta, answers, strict=True):
        pairs = parse_io_pairs(answer)
        key = (t["cluster_id"], t["task_index"])
        have = grounded.setdefault(key, [])
        seen = seen_inputs.setdefault(key, {normalise_text(d["input"]) for d in t["demos"]})
        entry = {
            "cluster_id": t["cluster_id"],
            "task_index": t["task_index"],
            "task_name": t["task_name"],
            "request": k,
            "references": refs,
            "response": answer,
            "kept": [],
            "dropped": [],
        }
        log.append(entry)
        if len(pairs) != 2:
            step.dropped["answer_not_two_pairs"] += 1
            step.notes[f"answers_with_{min(len(pairs), 3)}{'+' if len(pairs) >= 3 else ''}_pairs"] += 1
            continue
        step.answers_parsed += 1
        step.items_parsed += 2
        for inp, out in pairs:
            pair, reason = clean_demo_pair(inp, out, refs, [d["input"] for d in shown])
            if pair and normalise_text(pair[0]) in seen:
                pair, reason = None, "duplicate"
            if pair is None:
                step.dropped[str(reason)] += 1
                entry["dropped"].append({"input": inp, "output": out, "reason": reason})
                continue
            have.append({"input": pair[0], "output": pair[1]})
            seen.add(normalise_text(pair[0]))
            entry["kept"].append(have[-1])
            step.items_kept += 1
    return grounded, log


# -- (e) the pool ----------------------------------------------------------------------------------------


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
    earlier record (larger cluster, analysis before tasks) is kept.
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
