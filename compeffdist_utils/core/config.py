"""Typed run parameters, loaded from the YAML files in ``params/``.

Every stage reads its settings from one validated :class:`Params` object, so a typo in a params
file fails at load time with the field's dotted path and the allowed values, not deep inside a
stage. Overrides (from the CLI, papermill or tests) use dotted keys such as
``{"corpus.per_domain.imdb": 4}``.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from compeffdist_utils.core.io import not_utf8
from compeffdist_utils.core.params_models import (
    EMBEDDED_CAUSAL_LM,
    EMBEDDED_EMBEDDER,
    EMBEDDED_SPECIALIST,
    WRITER_STAGES,
    ModelsParams,
    Section,
    TeacherParams,
)
from compeffdist_utils.core.params_stages import (
    EMBEDDED_DOMAINS,
    SENTIBENCH_DATASETS,
    AttributesParams,
    BudgetParams,
    ClusteringParams,
    CorpusFile,
    CorpusParams,
    DecodingParams,
    DifficultyParams,
    DistillDataParams,
    EfficiencyParams,
    EvaluationParams,
    InstructionsParams,
    SelectionParams,
    TrainingParams,
)
from compeffdist_utils.core.yaml_files import load_yaml

__all__ = [
    "EMBEDDED_CAUSAL_LM",
    "EMBEDDED_DOMAINS",
    "EMBEDDED_EMBEDDER",
    "EMBEDDED_SPECIALIST",
    "SENTIBENCH_DATASETS",
    "WRITER_STAGES",
    "AttributesParams",
    "BudgetParams",
    "ClusteringParams",
    "CorpusFile",
    "CorpusParams",
    "DecodingParams",
    "DifficultyParams",
    "DistillDataParams",
    "EfficiencyParams",
    "EvaluationParams",
    "InstructionsParams",
    "ModelsParams",
    "Params",
    "ParamsError",
    "SelectionParams",
    "TeacherParams",
    "TrainingParams",
    "apply_overrides",
    "load_params",
    "params_from_dict",
    "parse_set_overrides",
]


class ParamsError(ValueError):
    """A params file or override that does not validate; the message names the field."""


SEED_FIELDS = ("seed", "random_state", "subset_seed")  # single seeds; the lists evaluation.seeds and
# efficiency.seeds are the protocol's repeats (paper: 42/52/62) and are always set explicitly


def _fill_seeds(
    section: type[BaseModel], data: dict[str, Any], seed: Any, from_default: bool = False
) -> dict[str, Any]:
    """``data`` with every seed field it leaves unset, in every sub-section, set to ``seed``.

    An absent sub-section starts from its field's default (e.g. attributes.decoding's 1,000 tokens at
    temperature 1.0) with that default's seeds replaced, so filling the seed changes nothing else.
    """
    out = dict(data)
    for name, info in section.model_fields.items():
        ann = info.annotation
        if name in SEED_FIELDS and (from_default or name not in out):
            out[name] = seed
        elif isinstance(ann, type) and issubclass(ann, BaseModel):
            sub, default = out.get(name), from_default
            if sub is None and isinstance(info.default, BaseModel):
                sub, default = info.default.model_dump(mode="json"), True
            if isinstance(sub, dict):
                out[name] = _fill_seeds(ann, sub, seed, default)
    return out


class Params(Section):
    """The whole run. Sections mirror the steps of docs/METHOD.md.

    The top-level ``seed`` is the default of every single seed of the run (each section's ``seed``,
    ``clustering.random_state``, ``evaluation.subset_seed``): one number reseeds the whole run, and a
    seed set in its section wins.
    """

    run_name: str = Field(default="tiny", pattern=r"^[A-Za-z0-9_.-]+$")
    seed: int = 42
    reports_dir: str = "reports"
    cache_dir: str | None = Field(
        default=None,
        description="Model + response cache; default $COMPEFFDIST_CACHE or ~/.cache/compeffdist.",
    )
    models: ModelsParams = ModelsParams()
    corpus: CorpusParams = CorpusParams()
    attributes: AttributesParams = AttributesParams()
    clustering: ClusteringParams = ClusteringParams()
    instructions: InstructionsParams = InstructionsParams()
    distill_data: DistillDataParams = DistillDataParams()
    difficulty: DifficultyParams = DifficultyParams()
    selection: SelectionParams = SelectionParams()
    training: TrainingParams = TrainingParams()
    evaluation: EvaluationParams = EvaluationParams()
    efficiency: EfficiencyParams = EfficiencyParams()
    budget: BudgetParams = BudgetParams()

    @model_validator(mode="before")
    @classmethod
    def _seed_is_the_default_seed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "seed" in data:
            return _fill_seeds(cls, {k: v for k, v in data.items() if k != "seed"}, data["seed"]) | {
                "seed": data["seed"]
            }
        return data

    @field_validator("run_name")
    @classmethod
    def _not_a_parent(cls, v: str) -> str:
        # "." or ".." would make the run folder reports/ itself or the project root.
        if set(v) == {"."}:
            raise ValueError(f"run_name {v!r} names no folder of its own; use letters, digits, '_', '-'")
        return v

    # -- derived locations -------------------------------------------------------------------
    def resolved_cache_dir(self) -> Path:
        raw = self.cache_dir or os.environ.get("COMPEFFDIST_CACHE") or "~/.cache/compeffdist"
        return Path(raw).expanduser()

    def run_dir(self, root: Path | None = None) -> Path:
        base = Path(self.reports_dir)
        if not base.is_absolute() and root is not None:
            base = root / base
        return base / self.run_name

    def section_dump(self, dotted: str) -> Any:
        """The JSON-able value at a dotted path, used to fingerprint what a stage depends on."""
        value: Any = self.model_dump(mode="json")
        for part in dotted.split("."):
            value = value[part]
        return value


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Return a copy of ``data`` with dotted-key overrides applied (``a.b.c: 1``)."""
    out = copy.deepcopy(data)
    for key, value in (overrides or {}).items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ParamsError(f"override {key!r}: {part!r} is not a section")
            node = child
        node[parts[-1]] = value
    return out


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"invalid params in {source}:"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling against params/tiny.yaml)"
        elif e["type"] == "literal_error" and "expected" in e.get("ctx", {}):
            msg = f"must be one of {e['ctx']['expected']}; got {e.get('input')!r}"
        lines.append(f"  - {loc}: {msg}")
    return "\n".join(lines)


def params_from_dict(
    data: dict[str, Any], overrides: dict[str, Any] | None = None, source: str = "dict"
) -> Params:
    try:
        return Params.model_validate(apply_overrides(data, overrides))
    except ValidationError as err:
        raise ParamsError(_format_errors(err, source)) from None


def parse_set_overrides(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``--set corpus.per_domain.imdb=4`` -> {"corpus.per_domain.imdb": 4} (values parsed as YAML); the one
    parser of both command lines (``compeffdist`` and ``python -m compeffdist_utils.student_training.training``)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ParamsError(f"--set {item!r}: expected KEY=VALUE, e.g. corpus.per_domain.imdb=4")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            problem = str(err).splitlines()[0]
            raise ParamsError(
                f"--set {item!r}: the value is not valid YAML ({problem}); quote it, e.g. --set 'KEY=\"...\"'"
            ) from None
    return out


def load_params(path: str | Path, overrides: dict[str, Any] | None = None) -> Params:
    """Load and validate a params YAML file; errors name the file and the bad field."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"params file not found: {path}")
    try:
        data = load_yaml(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ParamsError(not_utf8(path, err)) from None
    except yaml.YAMLError as err:
        raise ParamsError(f"params file {path} is not valid YAML: {err}") from None
    if data is None:  # an empty file would silently become the defaults (run 'tiny')
        raise ParamsError(f"params file {path} is empty; start from params/tiny.yaml")
    if not isinstance(data, dict):
        raise ParamsError(f"params file {path} must hold a mapping at the top level")
    return params_from_dict(data, overrides, source=str(path))
