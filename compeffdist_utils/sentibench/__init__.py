"""SentiBench for stage 07: one import for the four modules that hold its jobs.

- :mod:`sentibench_tasks`: the 12 tasks (how each is scored) and the gold read from the data files;
- :mod:`sentibench_data`: loading, fetching, the flagged fallback and the seeded test subsets;
- :mod:`sentibench_protocol`: the prompt protocols, the authors' (default, verbatim from
  ``data/authors_protocol.json``) and the kit's wording, with their demo sampling;
- :mod:`sentibench_prompts`: building a run's prompts, fitted only when one exceeds the model's limit.
"""

from __future__ import annotations

from compeffdist_utils.sentibench.data import (
    SENTIBENCH_REPO,
    Benchmark,
    SentiBenchError,
    check_sentibench,
    fetch_sentibench,
    load_dataset,
    load_fallback,
    load_for_run,
    load_sentibench,
    resolve_sentibench_dir,
    test_subset,
)
from compeffdist_utils.sentibench.prompts import MIN_DEMO_TOKENS, build_prompts, fit_prompt, prompt_limit
from compeffdist_utils.sentibench.protocol import (
    PROTOCOL_FILE,
    Prompt,
    Protocol,
    ProtocolError,
    authors_instruction,
    authors_objects,
    authors_protocol,
    render_label,
    renderer,
    sample_demos,
)
from compeffdist_utils.sentibench.tasks import (
    ACSA_CATEGORIES,
    FALLBACK_GROUP,
    GROUPS,
    TASKS,
    BenchDataset,
    Example,
    TaskSpec,
)

__all__ = [
    "ACSA_CATEGORIES", "FALLBACK_GROUP", "GROUPS", "MIN_DEMO_TOKENS", "PROTOCOL_FILE", "SENTIBENCH_REPO",
    "TASKS", "BenchDataset", "Benchmark", "Example", "Prompt", "Protocol", "ProtocolError",
    "SentiBenchError", "TaskSpec", "authors_instruction", "authors_objects", "authors_protocol",
    "build_prompts", "check_sentibench", "fetch_sentibench", "fit_prompt", "load_dataset",
    "load_fallback", "load_for_run", "load_sentibench", "prompt_limit", "render_label", "renderer",
    "resolve_sentibench_dir", "sample_demos", "test_subset",
]  # fmt: skip
