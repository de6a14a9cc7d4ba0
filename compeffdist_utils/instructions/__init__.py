"""Stage 03 (notebook ``03_instructions``): per perspective, analysis prompts, task ideation, standardised
instructions and grounded demos make the instruction pool; its figures.
"""

from compeffdist_utils.instructions.analysis import analysis_chats
from compeffdist_utils.instructions.cleaning import clean_demo_pair
from compeffdist_utils.instructions.demonstrations import generate_demonstrations
from compeffdist_utils.instructions.funnel import Funnel
from compeffdist_utils.instructions.ideation import ideation_chats
from compeffdist_utils.instructions.inputs import cut_reference, select_clusters
from compeffdist_utils.instructions.json_repair import extract_json_list
from compeffdist_utils.instructions.kit_tasks import KIT_CLUSTER, KIT_TASKS, cluster_label, kit_instructions
from compeffdist_utils.instructions.parsing import parse_io_pairs, parse_numbered_list, parse_standardisation
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
    demonstration_prompt,
    standardisation_prompt,
    task_instruction_prompt,
)

__all__ = [
    "ANALYSIS_EXAMPLE",
    "ANALYSIS_EXAMPLE_ITEMS",
    "DEMONSTRATION_EXAMPLE",
    "DEMONSTRATION_EXAMPLE_PAIRS",
    "Funnel",
    "IDEATION_EXAMPLE",
    "IDEATION_EXAMPLE_TASKS",
    "KIT_CLUSTER",
    "KIT_TASKS",
    "STANDARDISATION_EXAMPLE",
    "STANDARDISATION_EXAMPLE_ANSWER",
    "analysis_chats",
    "build_pool",
    "clean_demo_pair",
    "cluster_label",
    "cut_reference",
    "demonstration_prompt",
    "extract_json_list",
    "generate_demonstrations",
    "ideation_chats",
    "kit_instructions",
    "near_duplicates",
    "parse_io_pairs",
    "parse_numbered_list",
    "parse_standardisation",
    "select_clusters",
    "standardisation_prompt",
    "task_instruction_prompt",
]
