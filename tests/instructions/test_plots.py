"""Stage figures and tables: the drawing helpers of compeffdist_utils.instructions.plots, read back from what they draw."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # the helpers draw; these tests only read the figures back

from compeffdist_utils.instructions import plots as instruction_report  # noqa: E402


def test_instruction_funnel_and_pool():
    step = {"requests": 4, "answers_parsed": 3, "items_parsed": 9, "items_kept": 5, "dropped": {"echo": 4}}
    steps = {name: dict(step) for name in instruction_report.FUNNEL_STEPS}
    funnel_df, drops = instruction_report.funnel_tables(steps)
    assert funnel_df.loc["ideation", "items_kept"] == 5 and len(drops) == len(instruction_report.FUNNEL_STEPS)
    assert len(instruction_report.funnel_chart(funnel_df).axes[0].patches) == 4 * 5
    pool = [{"cluster_id": c, "task_type": t} for c, t in [(0, "analysis"), (0, "scoring"), (1, "analysis")]]
    assert instruction_report.pool_by_cluster(pool).loc[0].sum() == 2
    fig = instruction_report.pool_composition(pool)
    assert sorted(p.get_height() for p in fig.axes[0].patches) == [1, 2]
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["0", "1"]


def test_the_kit_tasks_are_named_kit_on_the_cluster_axis():
    """The kit's fixed tasks (cluster -1) have no perspective: the axis says ``kit``, not ``-1``."""
    pool = [{"cluster_id": c, "task_type": t} for c, t in [(-1, "scoring"), (0, "analysis"), (1, "analysis")]]
    fig = instruction_report.pool_composition(pool)
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["kit", "0", "1"]


def test_example_instructions_show_one_prompt_per_task_type_and_demo_rows():
    pool = [
        {
            "cluster_id": 0,
            "instruction_id": "c0-a0",
            "task_name": "analysis",
            "task_type": "analysis",
            "prompt": "Why?",
        },
        {
            "cluster_id": 0,
            "instruction_id": "c0-t0",
            "task_name": "tone",
            "task_type": "scoring",
            "prompt": "Rate.",
        },
        {
            "cluster_id": 1,
            "instruction_id": "c1-a0",
            "task_name": "analysis",
            "task_type": "analysis",
            "prompt": "How?",
        },
    ]
    text = instruction_report.example_instructions(pool)
    assert "`c0-a0`" in text and "`c0-t0`" in text and "How?" not in text
    demos = instruction_report.grounded_demos_table({(0, 1): [{"input": "i", "output": "o"}], (1, 0): []})
    assert demos.to_dict("records") == [{"cluster_id": 0, "task_index": 1, "input": "i", "output": "o"}]
