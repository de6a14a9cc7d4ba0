"""The teacher path: chat requests answered by a local model (``hf``) or an OpenAI-compatible server
(``openai``), every answer cached in SQLite, and the run's token budget.
"""

from compeffdist_utils.teacher.backends import cache_path, make_teacher
from compeffdist_utils.teacher.base import TeacherBackend, teacher_identity
from compeffdist_utils.teacher.budget import TeacherBudget, budget_stop_path, read_budget_stop, usage_tokens
from compeffdist_utils.teacher.cache import ResponseCache, request_key
from compeffdist_utils.teacher.hf import HFBackend, hf_identity
from compeffdist_utils.teacher.requests import ChatRequest, Messages, conversation

__all__ = [
    "ChatRequest",
    "HFBackend",
    "Messages",
    "ResponseCache",
    "TeacherBackend",
    "TeacherBudget",
    "budget_stop_path",
    "cache_path",
    "conversation",
    "make_teacher",
    "read_budget_stop",
    "request_key",
    "teacher_identity",
    "hf_identity",
    "usage_tokens",
]
