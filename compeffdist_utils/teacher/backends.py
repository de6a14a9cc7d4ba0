"""Teacher backends: the one named in params, built around the persistent response cache.

Two backends share one interface (:class:`~compeffdist_utils.teacher.base.TeacherBackend`) and one cache
(:mod:`compeffdist_utils.teacher.cache`): ``hf``, a local transformers model (:mod:`.hf`), and ``openai``,
any OpenAI-compatible server (:mod:`.openai`). Requests and their answers are in :mod:`.requests`.

The names stage code imports from here (``ChatRequest``, ``Messages``, ``conversation``,
``TeacherBackend``, ...) are re-exported so that those imports keep working.
"""

from __future__ import annotations

import os
from pathlib import Path

from compeffdist_utils.core.config import Params
from compeffdist_utils.teacher.base import TeacherBackend, TeacherUnavailableError, teacher_identity
from compeffdist_utils.teacher.cache import ResponseCache
from compeffdist_utils.teacher.hf import HFBackend
from compeffdist_utils.teacher.openai import OpenAIBackend
from compeffdist_utils.teacher.requests import ChatRequest, Messages, conversation

__all__ = [
    "ChatRequest",
    "HFBackend",
    "Messages",
    "OpenAIBackend",
    "TeacherBackend",
    "TeacherUnavailableError",
    "cache_path",
    "check_teacher_settings",
    "conversation",
    "make_teacher",
    "teacher_identity",
]


def cache_path(params: Params) -> Path:
    """The response cache shared by every run with the same ``cache_dir``."""
    return params.resolved_cache_dir() / "responses.sqlite"


def check_teacher_settings(params: Params) -> list[str]:
    """What would stop the teacher before its first request, found without contacting it: an API key
    variable that is not set (``base_url`` itself is checked when params load)."""
    return [
        f"{name}.api_key_env: the environment variable {tp.api_key_env} is not set "
        f"(the teacher at {tp.base_url} needs the API key in it)"
        for name, tp in params.models.teachers()
        if tp.backend == "openai" and tp.api_key_env and not os.environ.get(tp.api_key_env)
    ]


def make_teacher(params: Params, cache: ResponseCache | None = None, stage: str = "") -> TeacherBackend:
    """The teacher ``stage`` talks to (``params.models.teacher_for``), writing through the persistent cache."""
    tp = params.models.teacher_for(stage)
    cache = cache or ResponseCache(cache_path(params))
    teacher: TeacherBackend
    if tp.backend == "hf":
        teacher = HFBackend(tp.model, params, cache, batch_size=tp.batch_size, settings=tp)
    else:
        teacher = OpenAIBackend(tp, cache)
    teacher.stage = stage
    teacher.max_failed_fraction = tp.max_failed_fraction
    return teacher
