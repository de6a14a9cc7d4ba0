"""What a run will cost, before it runs: teacher requests and tokens per stage, without calling a model.

Why: at paper scale stages 01-04 send tens of thousands of requests to a 70B teacher; the bill and the
GPU-hours should be known before pressing run. ``compeffdist plan PARAMS`` prints this plan; the runner
writes it into ``manifest.json`` before the first stage and, just before each stage, the same stage's plan
again with the inputs that exist by then, so the report can put plan and actuals side by side.

How each number is obtained (every stage plan says which, in its ``*_basis`` fields):

- prompt tokens are **counted** with the teacher's tokenizer (chat template applied, as the hf backend
  counts them) on the real requests where their inputs exist: the corpus for 01 (the run's
  ``corpus/texts.jsonl``, else the corpus the params select), the clusters for 03's first two steps,
  the pool and the texts for 04 (paired exactly as stage 04 pairs them). Otherwise they are
  **estimated**: representative requests (the kit's worked examples, real corpus texts) times the
  request count expected from the upstream stage's sizes. Without the tokenizer on this machine
  (hub models are looked up in the local cache only, never downloaded) tokens are characters / 4.
- completion tokens: an **upper bound**, requests x ``max_new_tokens``, and an **expected** value from
  the answers of these very requests already in the response cache (their mean stands in for the rest);
  requests found there are also counted as ``cached``: a rerun does not pay for them again.
- the student side (05-08: scoring, training and evaluation forward tokens) is in
  :mod:`compeffdist_utils.planning.student`; dollars and hours come from ``budget.price_*`` and
  ``budget.*_tokens_per_s`` (or the CLI flags).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from compeffdist_utils.core.config import EMBEDDED_DOMAINS, CorpusParams, Params
from compeffdist_utils.core.io import read_jsonl
from compeffdist_utils.environment_and_corpus.corpus import load_corpus
from compeffdist_utils.models import load_tokenizer
from compeffdist_utils.teacher.backends import cache_path
from compeffdist_utils.teacher.base import teacher_identity
from compeffdist_utils.teacher.cache import ResponseCache, request_key
from compeffdist_utils.teacher.hf import hf_identity
from compeffdist_utils.teacher.requests import ChatRequest, Messages

CHARS_PER_TOKEN = 4.0  # English text, when the tokenizer is not on this machine
TEMPLATE_TOKENS_PER_MESSAGE = 4  # role header and end marker, same fallback
PROXY_TEXTS_PER_DOMAIN = 200  # packaged texts that stand in for a corpus file that is not there


class PlanError(ValueError):
    """Inputs the plan cannot work from; the message names the file, field or stage."""


@dataclass
class StagePlan:
    """One stage's planned cost. Teacher numbers are zero for stages without the teacher."""

    stage: str
    teacher_requests: int = 0
    cached_requests: int = 0
    prompt_tokens: int = 0
    completion_tokens_max: int = 0
    completion_tokens_expected: int | None = None
    teacher_basis: str = ""
    student_forward_tokens: int = 0
    student_training_tokens: int = 0
    student_basis: str = ""
    usd_max: float | None = None
    usd_expected: float | None = None
    teacher_hours: float | None = None
    student_hours: float | None = None
    seconds: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Rates:
    """Prices (USD per 1M tokens) and throughputs (tokens/s) that turn tokens into dollars and hours."""

    price_in: float | None = None
    price_out: float | None = None
    teacher_tokens_per_s: float | None = None
    student_tokens_per_s: float | None = None

    @classmethod
    def from_params(cls, params: Params, **given: float | None) -> Rates:
        bp = params.budget
        base = {
            k: getattr(bp, k)
            for k in ("price_in", "price_out", "teacher_tokens_per_s", "student_tokens_per_s")
        }
        return cls(**{k: given.get(k) if given.get(k) is not None else v for k, v in base.items()})


class TokenCounter:
    """Token counts with a model's own tokenizer when it is on this machine, else characters / 4."""

    def __init__(self, spec: str, params: Params):
        self.spec = spec
        self.tok: Any = None
        try:
            self.tok = _local_tokenizer(spec, params)
            self.basis = f"{spec} tokenizer"
        except Exception as err:  # any failure to load means: estimate, and say why
            why = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
            self.basis = (
                f"~{CHARS_PER_TOKEN:g} characters per token ({spec} tokenizer not available here: {why})"
            )

    def texts(self, texts: Sequence[str]) -> list[int]:
        if self.tok is None:
            return [round(len(t) / CHARS_PER_TOKEN) for t in texts]
        return (
            [len(ids) for ids in self.tok(list(texts), add_special_tokens=False)["input_ids"]]
            if texts
            else []
        )

    def chats(self, chats: Sequence[Messages], add_generation_prompt: bool = True) -> list[int]:
        """Tokens of each conversation as the model sees it (chat template applied, as the hf backend counts)."""
        if self.tok is None or not getattr(self.tok, "chat_template", None):
            return [
                sum(round(len(c) / CHARS_PER_TOKEN) + TEMPLATE_TOKENS_PER_MESSAGE for _, c in m)
                for m in chats
            ]
        rendered = [
            self.tok.apply_chat_template(
                [{"role": r, "content": c} for r, c in m],
                tokenize=False,
                add_generation_prompt=add_generation_prompt,
            )
            for m in chats
        ]
        return self.texts(rendered)


def _local_tokenizer(spec: str, params: Params) -> Any:
    # local_files_only: planning never waits on (or needs) the hub; a hub model is used when cached.
    return load_tokenizer(spec, params, local_files_only=True)


@dataclass
class Part:
    """Requests of one step: the real ones (``exact``) or representative ones standing for ``n``."""

    label: str
    requests: list[ChatRequest]
    n: int
    exact: bool
    basis: str


class PlanContext:
    """What the stage planners share: params, run folder, tokenizers and corpus (each loaded once)."""

    def __init__(self, params: Params, run_dir: Path | None, root: Path):
        self.params, self.run_dir, self.root = params, run_dir, root
        self._counters: dict[str, TokenCounter] = {}
        self._corpus: tuple[list[dict[str, Any]], int, bool, str] | None = None
        path = cache_path(params)
        self.cache = ResponseCache(path) if path.is_file() else None  # planning creates no cache
        self.plans: dict[str, StagePlan] = {}  # planned so far, for the stages downstream

    def counter(self, spec: str) -> TokenCounter:
        if spec not in self._counters:
            self._counters[spec] = TokenCounter(spec, self.params)
        return self._counters[spec]

    def teacher(self, stage: str) -> TokenCounter:
        """The token counter of the teacher ``stage`` talks to."""
        return self.counter(self.params.models.teacher_for(stage).model)

    def run_file(self, rel: str) -> Path | None:
        """A file the run has written already, or None."""
        if self.run_dir is None:
            return None
        p = self.run_dir / rel
        return p if p.is_file() else None

    def corpus(self) -> tuple[list[dict[str, Any]], int, bool, str]:
        """(texts, how many the run has, exact?, basis): the texts themselves, or stand-ins for them."""
        if self._corpus is None:
            self._corpus = _load_corpus(self)
        return self._corpus

    def teacher_stage(self, stage: str, parts: Sequence[Part]) -> StagePlan:
        """Requests, tokens and cached answers of a teacher stage from its parts."""
        plan = StagePlan(stage)
        identity = cache_identity(self.params, stage)
        teacher = self.teacher(stage)
        found_n = found_completion = 0
        for part in parts:
            lengths = teacher.chats([r.messages for r in part.requests])
            if part.exact:
                prompt = sum(lengths)
            else:
                prompt = round(sum(lengths) / len(lengths) * part.n) if lengths else 0
            plan.teacher_requests += part.n
            plan.prompt_tokens += prompt
            max_new = part.requests[0].decoding.max_new_tokens if part.requests else 0
            plan.completion_tokens_max += part.n * max_new
            hits = 0
            if part.exact and self.cache is not None and part.requests:
                keys = list(dict.fromkeys(request_key(identity, r.as_dict()) for r in part.requests))
                got = self.cache.get_many(keys)
                hits = len(got)
                found_n += hits
                found_completion += sum(a.completion_tokens for a in got.values())
            plan.cached_requests += hits
            plan.details[part.label] = {
                "requests": part.n, "prompt_tokens": prompt, "cached": hits, "basis": part.basis,
            }  # fmt: skip
        if found_n:
            per = found_completion / found_n
            plan.completion_tokens_expected = round(
                found_completion + per * (plan.teacher_requests - found_n)
            )
        bases = [f"{p.label}: {p.basis}" for p in parts]
        plan.teacher_basis = "; ".join(bases) + f" · tokens: {teacher.basis}"
        return plan


def cache_identity(params: Params, stage: str = "") -> dict[str, str]:
    """The identity ``stage``'s teacher puts in cache keys, so the plan finds answers already cached."""
    tp = params.models.teacher_for(stage)
    if tp.backend == "hf":
        return hf_identity(tp.model)
    return teacher_identity("openai", str(tp.base_url), tp.model)


# -- the corpus ---------------------------------------------------------------------------------------------


def _load_corpus(ctx: PlanContext) -> tuple[list[dict[str, Any]], int, bool, str]:

    done = ctx.run_file("corpus/texts.jsonl")
    if done is not None:
        texts = read_jsonl(done)
        return texts, len(texts), True, f"{len(texts)} texts of the run's corpus/texts.jsonl"
    cp = ctx.params.corpus
    if cp.source == "embedded":
        texts = load_corpus(cp, ctx.root)[0].to_dict("records")
        return texts, len(texts), True, f"{len(texts)} texts the params select (stage 00 has not run)"
    found, missing = [], []
    for f in cp.files:
        path = Path(f.path).expanduser()
        (found if (path if path.is_absolute() else ctx.root / path).is_file() else missing).append(f)
    unsized = [f.path for f in missing if f.limit is None]
    if unsized:
        raise PlanError(
            f"corpus file(s) not found: {', '.join(unsized)} (relative to {ctx.root}); the plan needs them, or "
            "a `limit` on each, to count stage 01's requests"
        )
    texts = (
        load_corpus(cp.model_copy(update={"files": found}), ctx.root)[0].to_dict("records") if found else []
    )
    if not missing:
        return texts, len(texts), True, f"{len(texts)} texts the params select (stage 00 has not run)"
    n = len(texts) + sum(int(f.limit or 0) for f in missing)
    proxy = texts or _proxy_texts(cp)
    names = ", ".join(f.path for f in missing)
    return (
        proxy,
        n,
        False,
        (
            f"estimated: {names} not found, so their `limit` ({n - len(texts)} texts) with the length of "
            f"{len(proxy)} {'real' if texts else 'packaged'} texts cut at corpus.max_chars"
        ),
    )


def _proxy_texts(cp: CorpusParams) -> list[dict[str, Any]]:
    """Packaged texts, cleaned and cut like the params' corpus, standing in for files that are not here."""

    stand_in = CorpusParams(
        source="embedded",
        per_domain=dict.fromkeys(EMBEDDED_DOMAINS, PROXY_TEXTS_PER_DOMAIN),
        min_chars=cp.min_chars,
        max_chars=cp.max_chars,
        holdout_per_domain=0,
        seed=cp.seed,
    )
    return load_corpus(stand_in)[0].to_dict("records")


def plan_no_teacher(stage: str, what: str) -> StagePlan:
    return StagePlan(stage, teacher_basis=what)


# -- the whole run --------------------------------------------------------------------------------------------
