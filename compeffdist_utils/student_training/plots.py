"""Stage 06's figures: the learning curve from ``train_log.jsonl``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from compeffdist_utils.core.io import read_jsonl
from compeffdist_utils.student_training.training import LOG_FILE


def read_train_log(out_dir: str | Path) -> list[dict[str, Any]]:
    """The per-step rows of ``train_log.jsonl`` (for the learning-curve plot)."""
    return read_jsonl(Path(out_dir) / LOG_FILE)


def plot_learning_curves(rows: Sequence[dict[str, Any]], title: str = "Student training") -> Any:
    """Train and eval loss against the optimiser step."""
    import matplotlib.pyplot as plt  # deferred: heavy; read_train_log needs none
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label, style in (("loss", "train loss", "-"), ("eval_loss", "eval loss (held-out)", "o--")):
        pts = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
        if pts:
            ax.plot(*zip(*pts, strict=True), style, label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("cross-entropy on output tokens")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig
