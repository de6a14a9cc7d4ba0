"""The ``models`` section of the run parameters: which teacher (and writer), student and embedder a run uses,
and the base every params section shares (unknown keys are errors). Split from :mod:`.config`, which holds
the whole :class:`~compeffdist_utils.core.config.Params` and its loading.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from compeffdist_utils.core.model_spec import normalise_spec

EMBEDDED_CAUSAL_LM = "embedded:smollm2-135m-instruct"
EMBEDDED_EMBEDDER = "embedded:minilm-l6"
EMBEDDED_SPECIALIST = "embedded:smollm2-135m-sentiment"  # models/specialist.py

# Sequences per batch, or "auto": as many as fit the device's memory (compeffdist_utils/models/batching.py).
BatchSize = Annotated[int, Field(ge=1)] | Literal["auto"]


class Section(BaseModel):
    # extra="forbid" turns a misspelt key into an error that names it.
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class TeacherParams(Section):
    """How the teacher LLM is reached. The API key is never stored: only the env variable's name."""

    backend: Literal["hf", "openai"] = "hf"
    model: str = EMBEDDED_CAUSAL_LM
    base_url: str | None = None
    api_key_env: str | None = Field(
        default=None, description="Name of the environment variable that holds the API key."
    )
    max_concurrency: int = Field(default=8, ge=1, le=512)
    timeout_s: float = Field(default=120.0, gt=0)
    probe_timeout_s: float = Field(
        default=15.0, gt=0, description="A server that does not answer GET /models this fast fails the stage."
    )
    max_retries: int = Field(default=4, ge=0, le=20)
    max_failed_fraction: float = Field(
        default=0.2, ge=0, le=1, description="A teacher step with more failed requests or answers fails."
    )
    batch_size: BatchSize = Field(
        default=8, description="hf backend: prompts per generate() call, or 'auto' (fill the device)."
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "float32"
    device: str = "auto"

    @model_validator(mode="after")
    def _openai_needs_url(self) -> TeacherParams:
        if self.backend == "openai" and not self.base_url:
            raise ValueError("backend 'openai' needs base_url (e.g. http://127.0.0.1:8000/v1)")
        if self.base_url is not None:
            url = urlsplit(self.base_url)
            if url.scheme not in ("http", "https") or not url.hostname or " " in self.base_url:
                raise ValueError(
                    f"base_url {self.base_url!r} is not an http(s) URL with a host "
                    "(e.g. http://127.0.0.1:8000/v1)"
                )
        return self

    _pruned_model = field_validator("model", mode="before")(normalise_spec)

    @field_validator("api_key_env")
    @classmethod
    def _not_a_key(cls, v: str | None) -> str | None:
        # Guard against pasting the secret itself where its variable name belongs.
        if v is not None and (v.startswith("sk-") or len(v) > 64 or not v.replace("_", "").isalnum()):
            raise ValueError("api_key_env takes the NAME of an environment variable, not the key itself")
        return v


# The stages in which the teacher writes the method's own material (attribute lists, task instructions),
# as against answering tasks (stage 04) or being evaluated (stage 07): the stages ``models.writer`` serves.
WRITER_STAGES = ("01_attributes", "03_instructions")


class ModelsParams(Section):
    teacher: TeacherParams = TeacherParams()
    writer: TeacherParams | None = Field(
        default=None,
        description=(
            "Optional second teacher for the writing stages (01 attributes, 03 instructions); null: the teacher "
            "writes too, as in the paper. For a small answering specialist that no longer writes lists."
        ),
    )
    student: str = EMBEDDED_CAUSAL_LM
    embedder: str = EMBEDDED_EMBEDDER
    # auto: bf16 forward passes on CPUs with AMX / AVX512-BF16 (or CUDA), fp32 otherwise (models.resolve_dtype)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "float32"
    device: str = "auto"

    # A student may be a depth-pruned model, written as {base, keep_layers} (see pruning.py).
    _pruned_student = field_validator("student", mode="before")(normalise_spec)

    def teacher_for(self, stage: str) -> TeacherParams:
        """The teacher a stage talks to: ``writer`` in the writing stages when one is named, else ``teacher``."""
        if self.writer is not None and stage in WRITER_STAGES:
            return self.writer
        return self.teacher

    def teachers(self) -> list[tuple[str, TeacherParams]]:
        """Every teacher the run may reach, by its params path (for checks that cover them all)."""
        named = [("models.teacher", self.teacher)]
        return named + ([("models.writer", self.writer)] if self.writer is not None else [])
