"""Step 4a of the method (docs/METHOD.md): open-ended analysis prompts per cluster, from all its
attribute names and the usual descriptions of its top-5 attributes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from compeffdist_utils.core.config import InstructionsParams
from compeffdist_utils.instructions.funnel import Funnel, Teacher, ask_teacher
from compeffdist_utils.instructions.inputs import attributes_by_count
from compeffdist_utils.instructions.parsing import analysis_item_problem, parse_numbered_list
from compeffdist_utils.instructions.prompts import ANALYSIS_EXAMPLE, analysis_prompt
from compeffdist_utils.instructions.text import normalise_text
from compeffdist_utils.teacher.backends import Messages, conversation

TOP_DESCRIBED = 5  # docs/METHOD.md, step 4a: descriptions of the cluster's top-5 attributes


def analysis_chats(clusters: Sequence[dict[str, Any]], ip: InstructionsParams) -> list[Messages]:
    """One analysis-prompt request per cluster (also counted by :mod:`compeffdist_utils.planning.teacher`)."""
    example = ANALYSIS_EXAMPLE if ip.worked_example else None
    chats = []
    for c in clusters:
        attrs = attributes_by_count(c)
        top = [(a["attr"], a.get("top_description") or "") for a in attrs[:TOP_DESCRIBED]]
        request = analysis_prompt([a["attr"] for a in attrs], top, ip.analysis_per_cluster)
        chats.append(conversation(request, example))
    return chats


def generate_analysis_prompts(
    teacher: Teacher, clusters: Sequence[dict[str, Any]], ip: InstructionsParams, funnel: Funnel
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Ask for analysis prompts per cluster; return (kept prompts, one log record per cluster).

    An answer counts as parsed when it has at least one numbered line (else ``unparsed_answer``). Items
    are dropped when shorter than four words, when they are neither a question nor a request, when they
    repeat the worked example (:func:`parsing.analysis_item_problem`), when they repeat an
    earlier item of the same cluster, or beyond ``analysis_per_cluster``.
    """
    step = funnel["analysis"]
    chats = analysis_chats(clusters, ip)
    answers = ask_teacher(teacher, chats, ip.analysis, "03a analysis prompts")
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
