"""Cost before running: each stage's teacher requests and tokens, student forward and training tokens,
dollars and hours (``compeffdist plan``), and the planned-vs-actual tables of the report.
"""

from compeffdist_utils.planning.context import Rates
from compeffdist_utils.planning.plan import make_plan
from compeffdist_utils.planning.report import cost_table, filtering_savings, format_plan, table_html

__all__ = [
    "Rates",
    "cost_table",
    "filtering_savings",
    "format_plan",
    "make_plan",
    "table_html",
]
