"""The dataset card (``README.md``) of an exported dataset folder: YAML metadata whose ``configs`` tell
``datasets.load_dataset`` which Parquet files make each config and split, then what the data is, its
columns, its provenance and licence notes, and how to load or upload it.
"""

from __future__ import annotations

from typing import Any

import yaml

from compeffdist_utils.export.dataset import POOL_COLUMNS, SELECTION_COLUMNS, DatasetContent
from compeffdist_utils.export.provenance import Provenance, provenance_lines


def _size_category(n: int) -> str:
    for limit, name in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
    ):
        if n < limit:
            return name
    return "n>1M"


def card_metadata(
    content: DatasetContent, files: dict[str, dict[str, str]], prov: Provenance
) -> dict[str, Any]:
    """The card's YAML header: licence, tags, size and one ``configs`` entry per config (pool first, default)."""
    n_pool = sum(content.configs[0].n_rows().values())
    configs = []
    for cfg in content.configs:
        entry: dict[str, Any] = {"config_name": cfg.name}
        if cfg.name == "pool":
            entry["default"] = True
        entry["data_files"] = [{"split": split, "path": path} for split, path in files[cfg.name].items()]
        configs.append(entry)
    return {
        "pretty_name": f"CompEffDist distillation data ({prov.run_name})",
        "license": "other",  # the texts' and the teacher's terms apply: see the licence notes in the card
        "language": ["en"],
        "task_categories": ["text-generation", "text-classification"],
        "tags": ["sentiment-analysis", "distillation", "instruction-tuning", "compeffdist"],
        "size_categories": [_size_category(n_pool)],
        "configs": configs,
    }


def _configs_table(content: DatasetContent) -> list[str]:
    lines = ["| config | rows per split | what it is |", "|---|---|---|"]
    for cfg in content.configs:
        rows = ", ".join(f"{split}: {n}" for split, n in cfg.n_rows().items())
        lines.append(f"| `{cfg.name}` | {rows} | {cfg.description} |")
    return lines


def _columns_table() -> list[str]:
    lines = ["| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{name}` | {kind} | {what} |" for name, kind, what in POOL_COLUMNS]
    lines += [f"| `{name}` | {kind} | (selection configs) {what} |" for name, kind, what in SELECTION_COLUMNS]
    return lines


def dataset_card(content: DatasetContent, files: dict[str, dict[str, str]], prov: Provenance) -> str:
    """The whole ``README.md``: YAML header, then the card's prose and tables."""
    header = yaml.safe_dump(card_metadata(content, files, prov), sort_keys=False, allow_unicode=True)
    example = next((c.name for c in content.configs if c.name != "pool"), "pool")
    left_out = [f"- `{slug}`" for slug in content.left_out] or ["- none"]
    body = [
        f"# CompEffDist distillation data: `{prov.run_name}`",
        "",
        "Sentiment-analysis instruction data made by the CompEffDist study kit (Xie et al., EMNLP 2025, "
        "arXiv 2510.24425): a teacher LLM enumerated sentiment attributes of user texts, the attributes were "
        "clustered into analytical perspectives, the teacher wrote tasks per perspective and answered them on "
        "real user texts, and every answered sample got difficulty scores (the method's rank score, IFD, "
        "perplexity, length). The selection configs are the budgeted subsets chosen by difficulty (or at "
        "random) that students were trained on.",
        "",
        "## Configs",
        *_configs_table(content),
        "",
        "Grid points left out (their selection could not be reproduced from the run's files):",
        *left_out,
        "",
        "## Columns",
        *_columns_table(),
        "",
        "## Provenance",
        *provenance_lines(prov),
        "",
        "The teacher's answers are machine-written and unchecked: they can be wrong, and a small teacher's "
        "often are. A run on the kit's embedded default is a smoke-scale demonstration, not a training set.",
        "",
        "## Use",
        "```python",
        "from datasets import load_dataset",
        "",
        'pool = load_dataset("path/to/dataset")  # the default config: every answered sample',
        f'subset = load_dataset("path/to/dataset", "{example}")',
        "```",
        "Nothing was uploaded by the kit. To share this folder on the Hugging Face Hub (after checking the "
        "licence notes above):",
        "```bash",
        "hf auth login",
        "hf upload YOUR_NAME/compeffdist-data path/to/dataset . --repo-type dataset",
        "```",
        "(`huggingface-cli upload YOUR_NAME/compeffdist-data path/to/dataset . --repo-type dataset` with "
        "older versions of `huggingface_hub`.)",
        "",
    ]
    return f"---\n{header}---\n\n" + "\n".join(body)
