"""Stage 03 (notebook ``03_instructions``): per perspective, analysis prompts, task ideation, standardised
instructions and grounded demos make the instruction pool; its figures.
"""

from compeffdist_utils.instructions.analysis import analysis_chats, generate_analysis_prompts
from compeffdist_utils.instructions.cleaning import (
    clean_demo_pair,
    clean_pair,
    compares_two_texts,
    first_paragraph,
)
from compeffdist_utils.instructions.demonstrations import generate_demonstrations
from compeffdist_utils.instructions.funnel import EmptyPoolError, Funnel, StepCounts, Teacher, ask_teacher
from compeffdist_utils.instructions.ideation import ideate_tasks, ideation_chats
from compeffdist_utils.instructions.inputs import attributes_by_count, cut_reference, select_clusters
from compeffdist_utils.instructions.json_repair import close_json_brackets, extract_json_list
from compeffdist_utils.instructions.parsing import (
    analysis_item_problem,
    parse_io_pairs,
    parse_numbered_list,
    parse_standardisation,
)
from compeffdist_utils.instructions.pool import build_pool, near_duplicates
from compeffdist_utils.instructions.prompts import (
    ANALYSIS_EXAMPLE,
    ANALYSIS_EXAMPLE_ITEMS,
    DEMONSTRATION_EXAMPLE,
    DEMONSTRATION_EXAMPLE_PAIRS,
    IDEATION_EXAMPLE,
    IDEATION_EXAMPLE_TASKS,
    STANDARDISATION_EXAMPLE,
    STANDARDISATION_EXAMPLE_ANSWER,
    analysis_prompt,
    demonstration_prompt,
    ideation_prompt,
    standardisation_prompt,
    task_instruction_prompt,
)
from compeffdist_utils.instructions.standardisation import standardise_tasks
from compeffdist_utils.instructions.task_items import (
    TASK_DESC_KEYS,
    TASK_NAME_KEYS,
    assign_task_type,
    read_task_item,
)
from compeffdist_utils.instructions.text import (
    echoes_worked_example,
    normalise_text,
    strip_markdown,
    strip_quotes,
    task_statement,
)

__all__ = [
    "ANALYSIS_EXAMPLE",
    "ANALYSIS_EXAMPLE_ITEMS",
    "DEMONSTRATION_EXAMPLE",
    "DEMONSTRATION_EXAMPLE_PAIRS",
    "EmptyPoolError",
    "Funnel",
    "IDEATION_EXAMPLE",
    "IDEATION_EXAMPLE_TASKS",
    "STANDARDISATION_EXAMPLE",
    "STANDARDISATION_EXAMPLE_ANSWER",
    "StepCounts",
    "TASK_DESC_KEYS",
    "TASK_NAME_KEYS",
    "Teacher",
    "analysis_chats",
    "analysis_item_problem",
    "analysis_prompt",
    "ask_teacher",
    "assign_task_type",
    "attributes_by_count",
    "build_pool",
    "clean_demo_pair",
    "clean_pair",
    "close_json_brackets",
    "compares_two_texts",
    "cut_reference",
    "demonstration_prompt",
    "echoes_worked_example",
    "extract_json_list",
    "first_paragraph",
    "generate_analysis_prompts",
    "generate_demonstrations",
    "ideate_tasks",
    "ideation_chats",
    "ideation_prompt",
    "near_duplicates",
    "normalise_text",
    "parse_io_pairs",
    "parse_numbered_list",
    "parse_standardisation",
    "read_task_item",
    "select_clusters",
    "standardisation_prompt",
    "standardise_tasks",
    "strip_markdown",
    "strip_quotes",
    "task_instruction_prompt",
    "task_statement",
]
