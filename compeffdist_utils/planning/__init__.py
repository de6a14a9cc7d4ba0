"""Cost before running: each stage's teacher requests and tokens, student forward and training tokens,
dollars and hours (``compeffdist plan``), and the planned-vs-actual tables of the report.
"""

from compeffdist_utils.planning.context import (
    Part,
    PlanContext,
    Rates,
    StagePlan,
    TokenCounter,
    cache_identity,
    plan_no_teacher,
)
from compeffdist_utils.planning.plan import make_plan, price
from compeffdist_utils.planning.report import cost_table, filtering_savings, format_plan, table_html
from compeffdist_utils.planning.student import Samples, plan_05, plan_06, plan_07, plan_08
from compeffdist_utils.planning.teacher import plan_01, plan_03, plan_04

__all__ = [
    "Part",
    "PlanContext",
    "Rates",
    "Samples",
    "StagePlan",
    "TokenCounter",
    "cache_identity",
    "cost_table",
    "filtering_savings",
    "format_plan",
    "make_plan",
    "plan_01",
    "plan_03",
    "plan_04",
    "plan_05",
    "plan_06",
    "plan_07",
    "plan_08",
    "plan_no_teacher",
    "price",
    "table_html",
]
