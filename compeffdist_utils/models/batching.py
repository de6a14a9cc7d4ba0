"""Batch sizes that fill the device: ``batch_size: auto`` for scoring (stage 05), evaluation (stage 07) and
the hf teacher's generation.

Why: a fixed batch of 16 left half of an H200 idle at the 3B shape (issue 23: scoring at batch 64 ran
2x faster than at 16, prefill at 128 reached 40% of peak against 25%), while the same 16 can be too
many on a small GPU. With ``auto`` a batch holds as many length-sorted sequences as fit a **memory
budget**, and a batch that still runs out of memory is **split and rerun** (OOM back-off):

- budget: the memory free on the model's device (CUDA: ``torch.cuda.mem_get_info`` plus what PyTorch's
  allocator holds unused; CPU: ``MemAvailable``) times a safety share, divided by an estimate of the
  bytes one token of a batch costs in that job (:func:`bytes_per_token`, from the model's config:
  the activations of one layer, the attention scores where they are materialised (CPU), the KV cache
  of generation, the fp32 logits scoring reads); at most :data:`MAX_AUTO_BATCH` sequences;
- back-off: an out-of-memory error (``torch.OutOfMemoryError``, a CPU allocator failure) halves the
  batch that failed, and every later batch of the job stays at most that size;
- report: :class:`BatchReport` says what was picked (budget, largest and smallest batch, back-offs);
  it is logged and kept in :func:`batch_reports`, which stages 05 and 07 write into their record.

A fixed integer ``batch_size`` still gives batches of exactly that many sequences (no budget, no
back-off). Batch composition changes float sums in the last bits, so ``auto`` and a fixed size agree
within float tolerance, not bit for bit (tests/models/test_batching.py states the tolerance).
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

BatchSize = int | Literal["auto"]
Job = Literal["score", "prefill", "generate"]
T = TypeVar("T")

MAX_AUTO_BATCH = 128  # issue 23 on an H200: prefill reached 40% of peak at 128, 37% at 256 (more padding)
CUDA_SHARE = 0.8  # of the free device memory a batch may use
CPU_SHARE = 0.25  # of the available RAM: the CPU also runs the kernel, the tokenizer and the OS
LOGIT_BYTES = 4  # logits are read in fp32 (scoring upcasts them; generation's scores are fp32)

log = logging.getLogger(__name__)
_REPORTS: dict[str, dict[str, Any]] = {}


@dataclass
class BatchReport:
    """What one job's batching did: the setting, the budget it derived and the sizes it used."""

    job: str
    setting: str  # "auto" or the fixed size
    device: str
    token_budget: int | None = None  # padded tokens a batch may hold (auto)
    batches: int = 0
    sequences: int = 0
    largest: int = 0
    smallest: int = 0
    backoffs: int = 0

    def line(self) -> str:
        budget = f", budget {self.token_budget:,} padded tokens" if self.token_budget else ""
        return (
            f"{self.job}: batch_size {self.setting} on {self.device}{budget}: {self.batches} batches of "
            f"{self.smallest}-{self.largest} sequences ({self.sequences} in all), {self.backoffs} OOM back-off(s)"
        )


def batch_reports() -> dict[str, dict[str, Any]]:
    """The last :class:`BatchReport` (with its ``line``) of each job and model in this process, keyed
    ``"<job> <model folder name>"``; stages 05 and 07 write them into their record (``batch_sizes``)."""
    return dict(_REPORTS)


def is_out_of_memory(err: BaseException) -> bool:
    """An allocation failure on CUDA or CPU (anything else is a real error and propagates)."""
    import torch  # deferred: heavy, only when batching a model

    if isinstance(err, torch.OutOfMemoryError | MemoryError):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def available_bytes(device: str) -> int:
    """Memory a batch may still take on ``device``: free CUDA memory plus the allocator's unused cache, or
    the RAM Linux reports available (``MemAvailable``)."""
    import torch  # deferred: heavy, only when batching a model

    if device.startswith("cuda"):
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def bytes_per_token(
    config: Any, dtype_bytes: int, job: Job, width: int, device: str, new_tokens: int = 0
) -> int:
    """Estimated peak bytes per padded token of a batch, at padded ``width``, for ``job``.

    One layer's transient activations (residual, norm, q/k/v, attention output, the MLP's gate, up and
    product), attention scores where they are materialised (CPU's math path: heads x width fp32 per
    token), the fp32 logits ``score`` reads for every position, and for ``generate`` the KV cache of all
    layers over prompt + new tokens and one step's fp32 logits per sequence.
    """
    cfg = config.get_text_config() if hasattr(config, "get_text_config") else config
    missing = [
        k
        for k in ("hidden_size", "num_attention_heads", "num_hidden_layers", "vocab_size")
        if not hasattr(cfg, k)
    ]
    if missing:
        raise ValueError(
            f"batch_size: auto estimates memory from the model's config, which lacks {missing} "
            f"({type(cfg).__name__}); set a number instead"
        )
    hidden = cfg.hidden_size
    heads = cfg.num_attention_heads
    kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
    head_dim = getattr(cfg, "head_dim", None) or hidden // heads
    inter = getattr(cfg, "intermediate_size", None) or 4 * hidden
    vocab = cfg.vocab_size
    per = dtype_bytes * (4 * hidden + (heads + 2 * kv_heads) * head_dim + 3 * inter)
    if not device.startswith("cuda"):
        per += 4 * heads * width
    if job == "score":
        per += 2 * LOGIT_BYTES * vocab  # the kept logits and their fp32 copy, at most every position
    if job == "generate":
        grow = (width + new_tokens) / max(width, 1)
        per += int(2 * cfg.num_hidden_layers * kv_heads * head_dim * dtype_bytes * grow)
        per += LOGIT_BYTES * vocab // max(width, 1)
    return int(per)


class Batcher:
    """Length-sorted sequences into batches: a fixed size, or ``auto`` with a memory budget and OOM back-off.

    Callers hand :meth:`run` the sequence indices in the order to batch them (by length, longest first
    gives the fewest back-offs) with their token lengths, and a function that processes one batch.
    """

    def __init__(self, batch_size: BatchSize, model: Any, job: Job, new_tokens: int = 0):
        self.auto = batch_size == "auto"
        self.fixed = 0 if self.auto else int(batch_size)
        self.model, self.job, self.new_tokens = model, job, new_tokens
        self.device = str(_device_of(model))
        self.cap = MAX_AUTO_BATCH
        share = CUDA_SHARE if self.device.startswith("cuda") else CPU_SHARE
        self.budget_bytes = int(available_bytes(self.device) * share) if self.auto else 0
        self.report = BatchReport(job, str(batch_size), self.device)

    def _fits(self, n: int, width: int) -> bool:
        if not self.auto:
            return n <= self.fixed
        if n > self.cap:
            return False
        dtype_bytes = _dtype_bytes(self.model)
        per = bytes_per_token(self.model.config, dtype_bytes, self.job, width, self.device, self.new_tokens)
        return n == 1 or n * width * per <= self.budget_bytes

    def _take(
        self, order: Sequence[int], lengths: Sequence[int], start: int, same: Callable[[int, int], bool]
    ) -> int:
        width = lengths[order[start]]
        n = 1
        while start + n < len(order) and same(order[start], order[start + n]):
            width = max(width, lengths[order[start + n]])
            if not self._fits(n + 1, width):
                break
            n += 1
        return n

    def run(
        self,
        order: Sequence[int],
        lengths: Sequence[int],
        fn: Callable[[list[int]], T],
        same: Callable[[int, int], bool] = lambda a, b: True,
    ) -> Iterator[tuple[list[int], T]]:
        """(batch indices, ``fn(batch)``) batch by batch; ``same(a, b)`` False keeps a and b apart."""
        i = 0
        while i < len(order):
            n = self._take(order, lengths, i, same)
            batch = list(order[i : i + n])
            try:
                out = fn(batch)
            except Exception as err:
                if not (self.auto and n > 1 and is_out_of_memory(err)):
                    raise
                self._back_off(n, err)
                continue
            self._count(n, lengths, batch)
            yield batch, out
            i += n
        name = getattr(getattr(self.model, "config", None), "_name_or_path", "") or type(self.model).__name__
        _REPORTS[f"{self.job} {Path(str(name)).name}"] = asdict(self.report) | {"line": self.report.line()}
        log.info(self.report.line())

    def _back_off(self, n: int, err: BaseException) -> None:
        self.cap = max(1, n // 2)
        self.report.backoffs += 1
        log.warning("%s: a batch of %d sequences ran out of memory (%s); at most %d from now on",
                    self.job, n, str(err).splitlines()[0][:120] if str(err) else type(err).__name__, self.cap)  # fmt: skip
        _free_memory(self.device)

    def _count(self, n: int, lengths: Sequence[int], batch: list[int]) -> None:
        r = self.report
        r.batches += 1
        r.sequences += n
        r.largest = max(r.largest, n)
        r.smallest = n if r.smallest == 0 else min(r.smallest, n)
        if self.auto and r.token_budget is None:  # at the first (widest) batch's width
            width = max(lengths[i] for i in batch)
            per = bytes_per_token(
                self.model.config, _dtype_bytes(self.model), self.job, width, self.device, self.new_tokens
            )
            r.token_budget = self.budget_bytes // per


def _device_of(model: Any) -> Any:
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return getattr(model, "device", "cpu")


def _dtype_bytes(model: Any) -> int:
    try:
        return next(model.parameters()).element_size()
    except (StopIteration, AttributeError):
        return 4


def _free_memory(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        import torch  # deferred: heavy, only when batching a model

        torch.cuda.empty_cache()
