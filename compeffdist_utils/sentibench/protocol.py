"""The in-context prompts of stage 07: the authors' SentiBench protocol (default) and the kit's wording.

``evaluation.protocol: authors`` is the protocol of the authors' released scripts, read verbatim from
``data/authors_protocol.json`` (the packaged copy of ``../shared/sentibench/authors_protocol.json``; a
test keeps the two identical). Scores are comparable with the paper's only under this protocol:

- the instruction string of each dataset, typos included; P-Stance's has ``%s`` filled with the test
  example's target;
- demo blocks ``Sentence: ...\\nLabel: <label lower-cased>\\n`` (classification) or
  ``Sentence: ...\\nOutput: <gold as indented JSON>\\n`` (extraction), the query ``Sentence: ...\\nLabel:``
  (or ``Output:``), joined as ``'\\n'.join([instruction, '', *demo_blocks, query_block])``;
- P-Stance's demo labels read ``favor(opinion towards '<demo target>')``;
- demos drawn from the whole train.json: one ``random.Random(seed)`` stream, ``sample(pool, k)`` per test
  example in order (the authors seed Python's ``random`` once per run and sample the same way), so a
  prompt depends on which examples come before it;
- extraction gold objects built as the file's ``label_seq_*`` rules say (:func:`authors_objects`).

``evaluation.protocol: kit`` keeps the kit's earlier wording (``TaskSpec.instruction``), for a reason a
user may have: its extraction demos show one-line JSON after ``Label:``, about half the tokens of the
indented JSON, which matters for small-context students and CPU runs; P-Stance demos come from the
test example's own target, so the instruction is true of every demo; and demos are drawn per example
(seeded by dataset, seed and example id), so a prompt does not depend on the evaluated subset. Its
scores are NOT comparable with the paper's.
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from compeffdist_utils.sentibench.tasks import FALLBACK_GROUP, BenchDataset, Example, TaskSpec

Protocol = Literal["authors", "kit"]
PROTOCOL_FILE = Path(__file__).parents[1] / "data" / "authors_protocol.json"
PSTANCE = "multifaced/pstance"
# A prompt renderer: (test sentence, [(sentence shown for the demo, the demo)]) -> prompt text. The demo
# sentence is passed apart so that prompt fitting can shorten it; the answer is never cut.
Renderer = Callable[[str, Sequence[tuple[str, Example]]], str]


class ProtocolError(ValueError):
    """The protocol file lacks what a dataset needs; the message names the dataset and the file."""


@dataclass
class Prompt:
    prompt_id: str
    dataset: str
    seed: int
    example: Example
    demo_uids: list[str]
    text: str
    truncation: dict[str, Any] = field(default_factory=dict)  # empty when nothing was cut


@functools.cache
def authors_protocol() -> dict[str, Any]:
    """The authors' protocol constants, as the JSON file states them."""
    return json.loads(PROTOCOL_FILE.read_text(encoding="utf-8"))


def _block(template: str) -> str:
    """The file writes its blocks as Python string source: ``\\n`` there is a newline."""
    return template.replace("\\n", "\n")


# -- the authors' protocol -----------------------------------------------------------------------------


def authors_instruction(spec: TaskSpec, target: str | None = None) -> str:
    """The dataset's instruction string, verbatim; P-Stance's filled with ``target``.

    The packaged-corpus fallback (not SentiBench) borrows the instruction of the ``sc/`` dataset with
    the same label set, so that it is asked the way the authors ask sentiment analysis.
    """
    instructions = authors_protocol()[spec.kind]["instructions"]
    text = instructions.get(spec.name)
    if text is None and spec.group == FALLBACK_GROUP:
        verbalisers = authors_protocol()["classification"]["verbalisers"]
        wanted = {" " + lab for lab in spec.labels}
        text = next(
            (instructions[n] for n, v in verbalisers.items() if n.startswith("sc/") and set(v) == wanted),
            None,
        )
    if text is None:
        raise ProtocolError(f"{spec.name}: no instruction in {PROTOCOL_FILE} for this dataset or label set")
    return text % target if spec.name == PSTANCE else text


def authors_objects(name: str, rec: dict[str, Any]) -> list[dict[str, str]]:
    """An extraction record's gold objects as the authors render them (``label_seq_*`` in the file).

    ATSA follows the released ``make_atsa_rest16_seq`` where the file's summary is loose: duplicates are
    (term, polarity, position) triples, so a term at two positions is listed twice, and the positions
    are sorted as the strings the data files hold ("19" before "5"). Where the released code leaves the
    order to a set's iteration (two aspects at one position), the kit keeps file order.
    """
    if name == "absa/atsa_rest16":
        triples = [
            (a["target"], a["polarity"], (a["from"] or 0, a["to"] or 0))
            for a in rec["aspects"]
            if a["target"] not in ("NULL", None)
        ]
        unique = sorted(dict.fromkeys(triples), key=lambda t: t[2])
        return [{"aspect_term": term, "sentiment": pol} for term, pol, _ in unique]
    if name == "absa/acsa_rest16":
        return [
            {"aspect_category": a["category"].lower().replace("#", " "), "sentiment": a["polarity"]}
            for a in rec["aspects"]
        ]
    if name == "absa/asqp_rest16":
        return [
            {
                "aspect_term": q["aspect"],
                "aspect_category": q["category"],
                "opinion": q["opinion"],
                "sentiment": q["sentiment"],
            }
            for q in rec["quards"]
        ]
    if name == "absa/opener":
        objs = [
            {
                "holder": " AND ".join(o["Source"][0]) or "NULL",
                "target": " AND ".join(o["Target"][0]) or "NULL",
                "sentiment_expression": " AND ".join(o["Polar_expression"][0]),
                "sentiment_polarity": o["Polarity"].lower(),
            }
            for o in rec["opinions"]
        ]
        return objs or [
            dict.fromkeys(("holder", "target", "sentiment_expression", "sentiment_polarity"), "NULL")
        ]
    raise ProtocolError(f"{name}: not an extraction dataset of {PROTOCOL_FILE}")


def _authors_renderer(spec: TaskSpec, target: str | None) -> Renderer:
    section = authors_protocol()[spec.kind]
    instruction = authors_instruction(spec, target)
    demo = _block(section["pstance_demo_block" if spec.name == PSTANCE else "demo_block"])
    query = _block(section["query_block"])

    def fill(d: Example) -> dict[str, Any]:
        if spec.kind == "classification":
            return {"label_lower": str(d.raw["label"]).lower(), "demo_target": d.target}
        objs = authors_objects(spec.name, d.raw)
        return {"label_seq": json.dumps(objs, ensure_ascii=False, indent=2)}

    def render(sentence: str, demos: Sequence[tuple[str, Example]]) -> str:
        blocks = [demo.format(sentence=s, **fill(d)) for s, d in demos]
        return "\n".join([instruction, "", *blocks, query.format(sentence=sentence)])

    return render


# -- the kit's wording -------------------------------------------------------------------------------------


def render_label(spec: TaskSpec, gold: Any) -> str:
    """The kit's demo answer: the label, or the gold objects as one-line JSON."""
    return gold if spec.kind == "classification" else json.dumps(gold, ensure_ascii=False)


def _kit_renderer(spec: TaskSpec, target: str | None) -> Renderer:
    instruction = (
        spec.instruction.format(target=target) if "{target}" in spec.instruction else spec.instruction
    )

    def render(sentence: str, demos: Sequence[tuple[str, Example]]) -> str:
        parts = [instruction, ""]
        for s, d in demos:
            parts += [f"Sentence: {s}", f"Label: {render_label(spec, d.gold)}", ""]
        parts += [f"Sentence: {sentence}", "Label:"]
        return "\n".join(parts)

    return render


def renderer(protocol: Protocol, spec: TaskSpec, target: str | None = None) -> Renderer:
    """The prompt renderer of ``protocol`` for one dataset (and P-Stance test target)."""
    return (_authors_renderer if protocol == "authors" else _kit_renderer)(spec, target)


def sample_demos(
    ds: BenchDataset, examples: Sequence[Example], seed: int, shots: int, protocol: Protocol
) -> list[list[Example]]:
    """The demos of each example, as the protocol draws them (see the module docstring)."""
    if shots > len(ds.demos):
        raise ValueError(f"{ds.name}: {shots} shots requested but the demo pool has {len(ds.demos)} examples")
    if protocol == "authors":
        rng = random.Random(seed)
        return [rng.sample(ds.demos, shots) for _ in examples]
    out = []
    for ex in examples:
        pool = ds.demos
        if ex.target is not None:  # P-Stance: demos about the target the instruction names
            same = [d for d in pool if d.target == ex.target]
            pool = same if len(same) >= shots else pool
        out.append(random.Random(f"{ds.name}|{seed}|{ex.uid}").sample(pool, shots))
    return out
