"""Stage 07's model calls: what a causal LM answers to a batch of prompts.

- Classification: ONE forward pass per prompt, batched with left padding, reading only the last
  position's logits restricted to the first token of each " label" verbaliser; the argmax is the
  prediction, so there is never an unparsable answer. Position ids are computed from the attention
  mask, so a left-padded prompt gets the same logits as the same prompt alone.
- Extraction (ATSA/ACSA/ASQP/OpeNER): greedy generation (``max_new_tokens``, OpeNER its own limit),
  stopped early at a blank line or the next ``Sentence:`` (the answer is parsed by :mod:`.parsing`).

Prompts are batched by similar token length (longest first), so little compute goes to padding; a batch
holds ``batch_size`` prompts, or with ``auto`` as many as fit the device (:mod:`compeffdist_utils.models.batching`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from compeffdist_utils.core.progress import tqdm
from compeffdist_utils.models.batching import Batcher, BatchSize

STOP_STRINGS = ("\n\n", "\nSentence:")


class VerbaliserError(ValueError):
    """Two labels of a dataset start with the same token, so first-token logits cannot tell them apart."""


def label_token_ids(tokenizer: Any, labels: Sequence[str], dataset: str = "") -> list[int]:
    """First token of " label" for each label; raises :class:`VerbaliserError` on a collision."""
    ids = []
    for label in labels:
        toks = tokenizer.encode(" " + label, add_special_tokens=False)
        if not toks:
            raise VerbaliserError(f"{dataset}: the label {label!r} encodes to no tokens")
        ids.append(toks[0])
    if len(set(ids)) < len(ids):
        shown = ", ".join(
            f"{lab!r} -> {tokenizer.decode([i])!r} ({i})" for lab, i in zip(labels, ids, strict=True)
        )
        raise VerbaliserError(
            f"{dataset}: labels share a first token, so first-token classification is ambiguous: {shown}"
        )
    return ids


@contextmanager
def _left_padding(tokenizer: Any) -> Iterator[None]:
    old = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        yield
    finally:
        tokenizer.padding_side = old


def _by_length(tokenizer: Any, texts: Sequence[str]) -> tuple[list[int], list[int]]:
    """(indices longest first, token lengths): batches of similar length, so little compute goes to padding."""
    lengths = [len(ids) for ids in tokenizer(list(texts), add_special_tokens=True)["input_ids"]]
    return sorted(range(len(texts)), key=lambda i: -lengths[i]), lengths


def classify(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    token_ids: Sequence[int],
    batch_size: BatchSize = 8,
    progress: bool = False,
    desc: str = "classify",
) -> tuple[list[int], list[list[float]]]:
    """Index of the best label per prompt and the label logits, in input order."""
    import torch  # deferred: heavy, only when a model answers

    device = next(model.parameters()).device
    preds: list[int] = [0] * len(texts)
    scores: list[list[float]] = [[] for _ in texts]
    cols = torch.tensor(list(token_ids), device=device)

    def label_logits(idx: list[int]) -> Any:
        enc = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True).to(device)
        position_ids = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        out = model(**enc, position_ids=position_ids, logits_to_keep=1, use_cache=False)
        return out.logits[:, -1, :].index_select(-1, cols).float().cpu()

    order, lengths = _by_length(tokenizer, texts)
    bar = tqdm(total=len(texts), desc=desc, disable=not progress, leave=False)
    with _left_padding(tokenizer), torch.inference_mode():
        for idx, logits in Batcher(batch_size, model, "prefill").run(order, lengths, label_logits):
            for row, i in enumerate(idx):
                preds[i] = int(logits[row].argmax())
                scores[i] = [round(float(x), 4) for x in logits[row]]
            bar.update(len(idx))
    bar.close()
    return preds, scores


def generate(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    max_new_tokens: int,
    batch_size: BatchSize = 8,
    progress: bool = False,
    desc: str = "generate",
) -> list[str]:
    """Greedy continuations (new text only), cut at the first stop string, in input order."""
    import torch  # deferred: heavy, only when a model answers
    from transformers import GenerationConfig  # deferred: heavy, as torch

    device = next(model.parameters()).device
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=model.generation_config.eos_token_id,
        stop_strings=list(STOP_STRINGS),
    )
    out_texts = [""] * len(texts)

    def continuations(idx: list[int]) -> list[str]:
        enc = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True).to(device)
        seqs = model.generate(**enc, generation_config=config, tokenizer=tokenizer)
        return tokenizer.batch_decode(seqs[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)

    order, lengths = _by_length(tokenizer, texts)
    batcher = Batcher(batch_size, model, "generate", new_tokens=max_new_tokens)
    bar = tqdm(total=len(texts), desc=desc, disable=not progress, leave=False)
    with _left_padding(tokenizer), torch.inference_mode():
        for idx, new in batcher.run(order, lengths, continuations):
            for i, text in zip(idx, new, strict=True):
                out_texts[i] = cut_at_stop(text)
            bar.update(len(idx))
    bar.close()
    return out_texts


def cut_at_stop(text: str) -> str:
    cut = min((text.find(s) for s in STOP_STRINGS if s in text), default=len(text))
    return text[:cut]
