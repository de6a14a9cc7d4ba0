"""Tables and figures of stage 00: the models in use, and what the sampled corpus looks like before the
teacher sees it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from compeffdist_utils.core.config import Params
from compeffdist_utils.models import EMBEDDED_SPECS


def models_table(params: Params) -> pd.DataFrame:
    """The run's models by role (teacher, writer, student, difficulty scorer, embedder), with what each spec is."""
    scorer = params.difficulty.scorer
    role = {"models.teacher": "teacher", "models.writer": "writer (stages 01, 03)"}
    rows = [
        (role[name], tp.model, f"backend={tp.backend}" + (f", server={tp.base_url}" if tp.base_url else ""))
        for name, tp in params.models.teachers()
    ]
    rows += [
        ("student", params.models.student, ""),
        ("difficulty scorer", scorer or params.models.student, "proxy" if scorer else "(student)"),
        ("embedder", params.models.embedder, ""),
    ]
    table = pd.DataFrame(rows, columns=["role", "spec", "notes"])
    table["what it is"] = [EMBEDDED_SPECS.get(s, "user-named model") for s in table["spec"]]
    return table


def overview(texts: pd.DataFrame, holdout: pd.DataFrame) -> Figure:
    """Left: text length per domain (words); right: texts and labelled holdout per domain."""
    words = texts["text"].str.split().str.len()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for dom, grp in words.groupby(texts["domain"]):
        axes[0].hist(grp, bins=15, alpha=0.6, label=f"{dom} (n={len(grp)})")
    axes[0].set(title="Text length per domain", xlabel="words", ylabel="texts")
    axes[0].legend()
    both = pd.concat([texts.assign(split="texts"), holdout.assign(split="holdout")])
    both.groupby(["domain", "split"]).size().unstack().plot.bar(
        ax=axes[1], rot=0, title="Texts and labelled holdout per domain"
    )
    axes[1].set_ylabel("count")
    fig.tight_layout()
    return fig


def length_table(texts: pd.DataFrame) -> pd.DataFrame:
    """Words per text, described per domain."""
    words = texts["text"].str.split().str.len().rename("words")
    return words.groupby(texts["domain"]).describe().round(1)
