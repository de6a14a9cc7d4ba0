"""The teacher side of the plan (stages 01, 03, 04): the requests each stage will send.

Where a stage's inputs exist its real requests are built with the stage's own request builders and
counted; otherwise representative requests (the kit's worked examples on real corpus texts) stand for
the number of requests expected from the upstream stage's sizes (see :mod:`compeffdist_utils.planning.plan`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from compeffdist_utils.attributes.enumeration import enumeration_requests
from compeffdist_utils.core.io import read_jsonl
from compeffdist_utils.distillation_data.dataset import pair_instructions_with_texts, sample_instruction
from compeffdist_utils.instructions import prompts as instruction_prompts
from compeffdist_utils.instructions.analysis import analysis_chats
from compeffdist_utils.instructions.ideation import ideation_chats
from compeffdist_utils.instructions.inputs import cut_reference, select_clusters
from compeffdist_utils.planning.context import Part, PlanContext, StagePlan
from compeffdist_utils.teacher.requests import ChatRequest, Messages, conversation

# Stage 02's cluster count is not known before it runs. The paper: ~180 perspectives from 20,000 texts.
PAPER_CLUSTERS_PER_TEXT = 180 / 20000
TASKS_PER_CLUSTER = 4  # ideation asks for one task of each of the four types


def plan_01(ctx: PlanContext) -> StagePlan:

    texts, n, exact, basis = ctx.corpus()
    requests = enumeration_requests(texts, ctx.params.attributes)
    return ctx.teacher_stage("01_attributes", [Part("enumeration", requests, n, exact, basis)])


def expected_clusters(ctx: PlanContext) -> tuple[list[dict[str, Any]] | None, int, str]:
    """(clusters when stage 02 has run, how many stage 03 uses, basis)."""

    ip, cl = ctx.params.instructions, ctx.params.clustering
    done = ctx.run_file("clusters/clusters.jsonl")
    if done is not None:
        clusters = select_clusters(read_jsonl(done), ip.max_clusters)
        return clusters, len(clusters), f"{len(clusters)} clusters of the run's clusters/clusters.jsonl"
    if ip.max_clusters is not None:  # the cap stage 03 applies; assumed reached (a bill errs high)
        n, why = ip.max_clusters, f"instructions.max_clusters = {ip.max_clusters}"
    elif cl.method != "affinity":
        n, why = cl.n_clusters, f"clustering.n_clusters = {cl.n_clusters}"
    else:
        n = max(1, round(ctx.corpus()[1] * PAPER_CLUSTERS_PER_TEXT))
        why = "the paper's ~180 perspectives per 20,000 texts"
    return None, n, f"estimated: {n} clusters ({why})"


def tasks_per_cluster(ctx: PlanContext) -> int:
    cap = ctx.params.instructions.max_tasks_per_cluster
    return min(TASKS_PER_CLUSTER, cap) if cap else TASKS_PER_CLUSTER


def example_definition() -> str:
    """The worked example's task definition: the stand-in for tasks stage 03 has not written yet."""

    return instruction_prompts.STANDARDISATION_EXAMPLE_ANSWER.split("\n\n")[0].removeprefix("Definition: ")


def plan_03(ctx: PlanContext) -> StagePlan:

    ip = ctx.params.instructions
    clusters, n_c, c_basis = expected_clusters(ctx)

    def chat(request: str, example: tuple[str, str]) -> Messages:
        return conversation(request, example if ip.worked_example else None)

    def reqs(chats: list[Messages], dec: Any, tags: Callable[[int], str] = lambda k: "") -> list[ChatRequest]:
        return [ChatRequest(m, dec, tags(k)) for k, m in enumerate(chats)]

    parts = []
    if clusters is not None:
        parts.append(Part("analysis", reqs(analysis_chats(clusters, ip), ip.analysis), n_c, True, c_basis))
        parts.append(Part("ideation", reqs(ideation_chats(clusters, ip), ip.ideation), n_c, True, c_basis))
    else:
        parts.append(Part("analysis", reqs([chat(instruction_prompts.ANALYSIS_EXAMPLE[0], instruction_prompts.ANALYSIS_EXAMPLE)], ip.analysis), n_c,
                          False, c_basis + ", prompt of the worked example's cluster"))  # fmt: skip
        parts.append(Part("ideation", reqs([chat(instruction_prompts.IDEATION_EXAMPLE[0], instruction_prompts.IDEATION_EXAMPLE)], ip.ideation), n_c,
                          False, c_basis + ", prompt of the worked example"))  # fmt: skip
    n_t = n_c * tasks_per_cluster(ctx)
    t_basis = f"estimated: {n_t} tasks ({tasks_per_cluster(ctx)} per cluster, all kept)"
    example_task = instruction_prompts.IDEATION_EXAMPLE_TASKS[0]
    std = instruction_prompts.standardisation_prompt(example_task["task_name"], example_task["task_type"],
                                 example_task["task_description"], ip.min_examples)  # fmt: skip
    parts.append(Part("standardisation", reqs([chat(std, instruction_prompts.STANDARDISATION_EXAMPLE)], ip.standardisation), n_t,
                      False, t_basis + ", prompt of the worked example's task"))  # fmt: skip
    texts = [t["text"] for t in ctx.corpus()[0]]
    demo_chats = (
        [
            chat(
                instruction_prompts.demonstration_prompt(
                    example_definition(),
                    instruction_prompts.DEMONSTRATION_EXAMPLE_PAIRS[: 1 + k % 2],
                    [cut_reference(a), cut_reference(b)],
                ),
                instruction_prompts.DEMONSTRATION_EXAMPLE,
            )  # fmt: skip
            for k, (a, b) in enumerate(zip(texts[0:100:2], texts[1:100:2], strict=False))
        ]
        or [chat(instruction_prompts.DEMONSTRATION_EXAMPLE[0], instruction_prompts.DEMONSTRATION_EXAMPLE)]
    )
    n_d = n_t * ip.demo_requests_per_task
    parts.append(Part("demonstrations", reqs(demo_chats, ip.demos), n_d, False,
                      f"estimated: {ip.demo_requests_per_task} per task, the worked example's task with pairs "
                      "of real corpus texts as references"))  # fmt: skip
    return ctx.teacher_stage("03_instructions", [p for p in parts if p.n])


def plan_04(ctx: PlanContext) -> StagePlan:

    dp, ip = ctx.params.distill_data, ctx.params.instructions
    texts, n_texts, texts_exact, t_basis = ctx.corpus()
    pool_file = ctx.run_file("instructions/pool.jsonl")
    if pool_file is not None and texts_exact:
        pool = read_jsonl(pool_file)
        samples, _ = pair_instructions_with_texts(pool, texts, dp)
        requests = [ChatRequest.user(s["instruction"], dp.decoding) for s in samples]
        basis = f"{len(samples)} samples paired from the run's pool ({len(pool)} instructions) and {t_basis}"
        return ctx.teacher_stage(
            "04_distillation_data", [Part("answers", requests, len(requests), True, basis)]
        )
    if pool_file is not None:
        n_pool, p_basis = len(read_jsonl(pool_file)), "the run's pool"
    else:
        _, n_c, c_basis = expected_clusters(ctx)
        n_pool = n_c * (ip.analysis_per_cluster + tasks_per_cluster(ctx))
        p_basis = f"{c_basis} x ({ip.analysis_per_cluster} analysis prompts + {tasks_per_cluster(ctx)} tasks)"
    slots = n_pool * min(dp.texts_per_instruction, n_texts)
    n = min(slots, dp.max_samples or slots)
    task = instruction_prompts.task_instruction_prompt(
        example_definition(), list(instruction_prompts.DEMONSTRATION_EXAMPLE_PAIRS)[: ip.prompt_demos]
    )
    prompts = [*instruction_prompts.ANALYSIS_EXAMPLE_ITEMS[: ip.analysis_per_cluster]] + [
        task
    ] * tasks_per_cluster(ctx)
    requests = [
        ChatRequest.user(sample_instruction(p, t["text"]), dp.decoding) for t in texts[:60] for p in prompts
    ]
    basis = (f"estimated: {n} samples from a pool of {n_pool} ({p_basis}); prompts of the worked examples on "
             f"real texts ({t_basis})")  # fmt: skip
    return ctx.teacher_stage("04_distillation_data", [Part("answers", requests, n, False, basis)])
