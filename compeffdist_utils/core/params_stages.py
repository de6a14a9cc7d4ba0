"""The per-stage sections of the run parameters (corpus, attributes, clustering, instructions, distillation
data, difficulty, selection, training, evaluation, efficiency) and the teacher budget. Split from
:mod:`.config`, which assembles them into :class:`~compeffdist_utils.core.config.Params`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, field_validator, model_validator
from pydantic_core import PydanticCustomError

from compeffdist_utils.core.model_spec import normalise_spec
from compeffdist_utils.core.params_models import BatchSize, Section

Count = Annotated[int, Field(ge=0)]


def _count_or_all(v: Any) -> int | str:
    if v == "all":
        return "all"
    if isinstance(v, bool) or not isinstance(v, int):
        raise PydanticCustomError("count_or_all", "Input should be a whole number or 'all'")
    if v < 0:
        raise PydanticCustomError("greater_than_equal", "Input should be greater than or equal to 0")
    return v


CountOrAll = Annotated[int | Literal["all"], PlainValidator(_count_or_all)]


def _check_budget(v: float) -> float:
    """A budget is a fraction (0 < b <= 1) or a whole number of samples (b > 1): 1.5 is neither."""
    if v <= 0:
        raise ValueError(f"budget {v} must be > 0 (a fraction <= 1, or a number of samples > 1)")
    if v > 1 and v != int(v):
        raise ValueError(f"budget {v} is neither a fraction (<= 1) nor a whole number of samples")
    return v


class CorpusFile(Section):
    path: str
    text_column: str = "text"
    domain: str | None = Field(default=None, description="Domain tag; defaults to the file's stem.")
    format: Literal["auto", "csv", "jsonl", "txt"] = "auto"
    label_column: str | None = None
    limit: int | None = Field(default=None, ge=1)


EMBEDDED_DOMAINS = ("imdb", "rotten_tomatoes", "tweets")


class CorpusParams(Section):
    source: Literal["embedded", "files"] = "embedded"
    per_domain: dict[str, CountOrAll] = Field(
        default_factory=lambda: {"imdb": 8, "rotten_tomatoes": 8, "tweets": 8},
        description="Texts per embedded domain, or 'all' (everything but the holdout); "
        "a count above what a domain holds is refused.",
    )
    files: list[CorpusFile] = Field(default_factory=list)
    min_chars: int = Field(default=20, ge=0)
    max_chars: int = Field(default=1200, ge=1, description="Longer texts are cut at a word boundary.")
    holdout_per_domain: int = Field(
        default=40, ge=0, description="Labelled texts kept apart for the SentiBench fallback evaluation."
    )
    seed: int = 42

    @model_validator(mode="after")
    def _check(self) -> CorpusParams:
        if self.source == "embedded":
            unknown = sorted(set(self.per_domain) - set(EMBEDDED_DOMAINS))
            if unknown:
                raise ValueError(f"unknown embedded domain(s) {unknown}; available: {list(EMBEDDED_DOMAINS)}")
        elif not self.files:
            raise ValueError("source 'files' needs at least one entry in corpus.files")
        return self


class DecodingParams(Section):
    max_new_tokens: int = Field(default=256, ge=1)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int = 42


class AttributesParams(Section):
    decoding: DecodingParams = DecodingParams(max_new_tokens=1000, temperature=1.0)
    worked_example: bool = Field(default=True, description="Show a worked example (helps small teachers).")
    min_count: int = Field(default=10, ge=0, description="Keep names seen MORE than this many times.")


class ClusteringParams(Section):
    method: Literal["affinity", "kmeans", "agglomerative"] = "affinity"
    preference_percentile: float = Field(default=0.5, ge=0.0, le=100.0)
    damping: float = Field(default=0.9, ge=0.5, lt=1.0)
    max_iter: int = Field(default=1000, ge=1)
    convergence_iter: int = Field(default=15, ge=1)
    random_state: int = 42
    n_clusters: int = Field(default=100, ge=1, description="k for kmeans / agglomerative.")
    frequency_weighting: bool = True
    inventory_file: str | None = Field(
        default=None,
        description="Cluster an inventory file (authors' JSON array, {attr, count} JSONL or CSV) instead of "
        "stage 01's.",
    )
    projection: Literal["umap", "pca"] = "umap"
    target_clusters: int | float | None = Field(
        default=0.1,
        description="AP: search the preference that gives this many clusters (an integer, or a fraction of "
        "the inventory: 0.1 ~ the paper's 180 of 1,785); null uses preference_percentile.",
    )
    min_clusters: int = Field(
        default=1,
        ge=1,
        description="Floor of a fractional target_clusters: on a small inventory (13 names x 0.1 = 1 "
        "cluster) the search still aims at this many perspectives, never more than there are names. "
        "An integer target_clusters is taken as given.",
    )
    target_tolerance: float = Field(
        default=0.05, ge=0.0, lt=1.0, description="Accept a cluster count within this fraction of the target."
    )
    target_max_steps: int = Field(default=20, ge=1, description="AP runs the preference search may make.")
    ap_solver: Literal["weighted", "repeated"] = Field(
        default="weighted",
        description="Frequency weighting as AP with multiplicities on the unique names, or on materialised "
        "repeated points (the authors' formulation: ~16x the memory; for checks).",
    )
    ap_dtype: Literal["float64", "float32"] = Field(
        default="float64",
        description="Arithmetic of AP's message matrices: float64 is scikit-learn's; float32 halves their "
        "memory (the affordable way to run ap_solver: repeated on a paper-size inventory).",
    )

    @field_validator("target_clusters")
    @classmethod
    def _count_or_fraction(cls, v: int | float | None) -> int | float | None:
        if isinstance(v, float) and not 0.0 < v < 1.0:
            raise ValueError(
                "a fraction of the inventory must lie strictly between 0 and 1; or give an integer"
            )
        if isinstance(v, int) and v < 1:
            raise ValueError("the number of clusters must be >= 1")
        return v


class InstructionsParams(Section):
    max_clusters: int | None = Field(default=None, ge=1, description="Use only the N largest clusters.")
    analysis: DecodingParams = DecodingParams(max_new_tokens=512, temperature=0.7)
    ideation: DecodingParams = DecodingParams(max_new_tokens=1024, temperature=0.7)
    standardisation: DecodingParams = DecodingParams(max_new_tokens=1500, temperature=0.3)
    demos: DecodingParams = DecodingParams(max_new_tokens=512, temperature=1.0)
    max_tasks_per_cluster: int | None = Field(default=None, ge=1)
    analysis_per_cluster: int = Field(
        default=5, ge=1, description="Analysis prompts asked for (and kept at most) per cluster."
    )
    min_examples: int = Field(
        default=8, ge=1, description="Examples asked for in standardisation; tasks with fewer are dropped."
    )
    max_demos: int = Field(default=7, ge=1)
    demo_requests_per_task: int = Field(default=16, ge=0)
    prompt_demos: int = Field(
        default=2, ge=0, description="Demos written into a task instruction's prompt (grounded ones first)."
    )
    dedup_threshold: float = Field(
        default=0.9, gt=0.0, le=1.0, description="Cosine similarity (models.embedder) of near-duplicates."
    )
    worked_example: bool = True
    kit_tasks: list[Literal["classification", "scoring", "extraction", "structured_output"]] = Field(
        default_factory=list,
        description="Fixed overall-sentiment tasks of these types added to the pool beside the teacher's "
        "(instructions/kit_tasks.py); the teacher still answers them. Empty: the paper's pool.",
    )


class DistillDataParams(Section):
    texts_per_instruction: int = Field(default=2, ge=1)
    domain_mix: Literal["balanced", "proportional"] = "balanced"
    max_samples: int | None = Field(default=None, ge=1)
    decoding: DecodingParams = DecodingParams(max_new_tokens=512, temperature=0.7)
    seed: int = 42
    heldout_samples: int = Field(
        default=0,
        ge=0,
        description="Answered samples set apart (never selected or trained on) for the held-out loss.",
    )


class DifficultyParams(Section):
    scorer: str | None = Field(default=None, description="Causal LM spec; None = the student.")
    _pruned_scorer = field_validator("scorer", mode="before")(normalise_spec)
    dtype: Literal["auto", "float32", "bfloat16"] = "float32"
    batch_size: BatchSize = Field(
        default=8, description="Samples per forward pass, or 'auto' (fill the device)."
    )
    max_length: int = Field(default=1024, ge=8)
    nucleus_p: float = Field(default=0.95, gt=0.0, le=1.0)
    include_rank0: bool = False
    vocab_chunk: int = Field(default=8192, ge=256)


class SelectionParams(Section):
    method: Literal["hard", "soft", "random"] = "hard"
    score: Literal["rank", "ifd", "ppl", "length"] = "rank"
    budget: float = Field(default=0.1, gt=0.0, description="<=1: fraction; >1: number of samples.")
    stratify: Literal["inprompt", "full"] = "inprompt"
    soft_peak: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int = 42

    @field_validator("budget")
    @classmethod
    def _whole_or_fraction(cls, v: float) -> float:
        return _check_budget(v)


class TrainingParams(Section):
    method: Literal["lora", "full"] = "lora"
    lora_r: int = Field(default=8, ge=1)
    lora_alpha: int = Field(default=16, ge=1)
    lora_dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    epochs: float = Field(default=4.0, gt=0)
    max_steps: int = Field(default=-1, ge=-1, description="-1: run the epochs.")
    learning_rate: float = Field(default=5e-5, gt=0)
    weight_decay: float = Field(default=0.1, ge=0)
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = "cosine"
    warmup_ratio: float = Field(default=0.0, ge=0.0, lt=1.0)
    per_device_batch_size: int = Field(default=4, ge=1)
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    max_length: int = Field(default=2048, ge=16)
    packing: bool = False
    max_grad_norm: float = Field(default=1.0, gt=0)
    eval_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    logging_steps: int = Field(default=1, ge=1)
    eval_steps: int | None = Field(default=None, ge=1, description="None: every logging_steps.")
    save_steps: int = Field(default=50, ge=1)
    save_total_limit: int = Field(default=2, ge=1, description="Checkpoints kept in student/checkpoints/.")
    bf16: bool = False
    weights_dtype: Literal["float32", "bfloat16"] = Field(
        default="float32",
        description="dtype of the trained weights (and so of AdamW's state): bfloat16 halves their memory, "
        "but an update below 1/256 of a weight is rounded away (lr 5e-5 on weights ~0.02 is), so keep "
        "float32 unless memory forces it; training.bf16 is the autocast of the computation.",
    )
    gradient_checkpointing: bool = Field(default=False, description="Less memory, more compute.")
    seed: int = 42
    report_to: Literal["tensorboard", "none", "wandb", "mlflow"] = Field(
        default="tensorboard",
        description="Where the Trainer logs: TensorBoard event files in student/tensorboard/, nothing, or "
        "wandb / mlflow (installed by the user). Not part of the weights' fingerprint.",
    )

    @field_validator("max_steps")
    @classmethod
    def _steps(cls, v: int) -> int:
        if v == 0:
            raise ValueError("max_steps 0 would train nothing; use -1 (run the epochs) or a number >= 1")
        return v


SENTIBENCH_DATASETS = (
    "sc/imdb", "sc/yelp2", "sc/sst2", "sc/twitter",
    "multifaced/irony18", "multifaced/tweeteval", "multifaced/pstance", "multifaced/intimacy",
    "absa/atsa_rest16", "absa/acsa_rest16", "absa/asqp_rest16", "absa/opener",
)  # fmt: skip


def _known_datasets(names: list[str]) -> list[str]:
    """``names`` when each is a SentiBench dataset; else an error listing the available ones."""
    unknown = [d for d in names if d not in SENTIBENCH_DATASETS]
    if unknown:
        raise ValueError(f"unknown dataset(s) {unknown}; available: {list(SENTIBENCH_DATASETS)}")
    return names


class EvaluationParams(Section):
    sentibench_dir: str | None = Field(default=None, description="SentiBench's datasets/ folder.")
    datasets: list[str] = Field(default_factory=lambda: list(SENTIBENCH_DATASETS))
    n_test: int | None = Field(default=None, ge=1, description="Seeded subset per dataset; None = all.")
    subset_seed: int = Field(default=42, description="Seed of the n_test subset (all models, all seeds).")
    seeds: list[int] = Field(default_factory=lambda: [42, 52, 62], min_length=1)
    shots: int = Field(default=4, ge=0)
    models: dict[str, str] = Field(
        default_factory=lambda: {"base_student": "student", "distilled_student": "distilled"},
        description="name -> spec; 'student', 'teacher' and 'distilled' refer to this run's models.",
    )
    batch_size: BatchSize = Field(default=8, description="Prompts per batch, or 'auto' (fill the device).")
    max_new_tokens: int = Field(default=150, ge=1)
    max_new_tokens_opener: int = Field(default=300, ge=1)
    max_prompt_tokens: int | None = Field(
        default=None, ge=64, description="Cut prompts above this; None = the model's context (never cut)."
    )
    protocol: Literal["authors", "kit"] = Field(
        default="authors",
        description="Prompt protocol: the authors' SentiBench scripts, verbatim (comparable with the paper), "
        "or the kit's wording (one-line JSON answers, fewer tokens; not comparable).",
    )

    @field_validator("datasets")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        return _known_datasets(v)

    @field_validator("models", mode="before")
    @classmethod
    def _pruned_models(cls, v: Any) -> Any:
        return {k: normalise_spec(s) for k, s in v.items()} if isinstance(v, dict) else v


class EfficiencyParams(Section):
    selectors: list[str] = Field(
        default_factory=lambda: [
            "random",
            "random_inprompt",
            "rank_hard",
            "rank_soft",
            "ifd",
            "ppl",
            "length",
        ]
    )
    budgets: list[float] = Field(default_factory=lambda: [0.05, 0.1, 0.25, 0.5, 1.0], min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [42], min_length=1)
    datasets: list[str] | None = Field(default=None, description="None = evaluation.datasets.")
    n_test: int | None = Field(default=None, ge=1)
    max_steps: int | None = Field(default=None, ge=1, description="Overrides training.max_steps per point.")
    include_base: bool = Field(default=True, description="Also score the untrained student (reference line).")
    keep_models: bool = Field(default=False, description="Keep each point's trained model (disk-hungry).")

    @field_validator("budgets")
    @classmethod
    def _budgets(cls, v: list[float]) -> list[float]:
        return [_check_budget(b) for b in v]

    @field_validator("selectors")
    @classmethod
    def _known_selectors(cls, v: list[str]) -> list[str]:
        allowed = {"random", "random_inprompt", "rank_hard", "rank_soft", "ifd", "ppl", "length"}
        unknown = [s for s in v if s not in allowed]
        if unknown:
            raise ValueError(f"unknown selector(s) {unknown}; available: {sorted(allowed)}")
        return v

    @field_validator("datasets")
    @classmethod
    def _known_datasets(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _known_datasets(v)


class BudgetParams(Section):
    """What the teacher may cost, and the prices and speeds that turn a plan into dollars and hours.

    The budget covers the whole run: the tokens (prompt + completion) of every teacher answer it uses,
    cached ones included (they were paid for once), so rerunning after a stop never pays twice and never
    lets the run cost more than the limit in total (see :mod:`compeffdist_utils.teacher.budget`).
    """

    max_teacher_tokens: int | None = Field(default=None, ge=1, description="Stop before the run exceeds it.")
    max_usd: float | None = Field(
        default=None, gt=0, description="Stop before the run costs more (needs prices)."
    )
    price_in: float | None = Field(default=None, ge=0, description="USD per 1M prompt tokens.")
    price_out: float | None = Field(default=None, ge=0, description="USD per 1M completion tokens.")
    teacher_tokens_per_s: float | None = Field(
        default=None, gt=0, description="Generated teacher tokens per second (all concurrency), for hours."
    )
    student_tokens_per_s: float | None = Field(
        default=None, gt=0, description="Student/scorer tokens per second in a forward pass, for hours."
    )

    @model_validator(mode="after")
    def _usd_needs_prices(self) -> BudgetParams:
        if self.max_usd is not None and (self.price_in is None or self.price_out is None):
            raise ValueError("max_usd needs budget.price_in and budget.price_out (USD per 1M tokens)")
        return self
