"""params/study.yaml keeps the sizes issue 12 asks of the laptop study (so a later edit cannot quietly
shrink it back into a smoke run)."""

from __future__ import annotations

from compeffdist_utils.core.config import EMBEDDED_CAUSAL_LM, EMBEDDED_SPECIALIST, load_params
from compeffdist_utils.core.model_spec import parse_pruned_spec
from compeffdist_utils.sentibench import TASKS


def test_study_preset_sizes(repo_root):
    p = load_params(repo_root / "params" / "study.yaml")
    pruned = parse_pruned_spec(p.models.student)
    assert pruned is not None and pruned.base == EMBEDDED_CAUSAL_LM
    # issue 22: a teacher with skill to pass on, the specialist built from the student's own base model
    assert p.models.teacher.model == EMBEDDED_SPECIALIST
    assert pruned.keep_layers < 30  # smaller than its teacher
    assert sum(p.corpus.per_domain.values()) >= 120
    assert (
        p.distill_data.max_samples - p.distill_data.heldout_samples >= 500
        and p.distill_data.heldout_samples > 0
    )
    # The sizes must survive a weak teacher: one kept instruction per cluster still fills the pool (the
    # first study run had the default target of a tenth of ~22 names: 2 clusters, 3 instructions, 48 samples).
    clusters = min(p.clustering.target_clusters, p.instructions.max_clusters)
    assert isinstance(p.clustering.target_clusters, int)
    assert clusters * p.distill_data.texts_per_instruction >= p.distill_data.max_samples
    assert p.distill_data.texts_per_instruction <= sum(p.corpus.per_domain.values())
    assert {"random", "rank_hard", "ifd", "ppl", "length"} <= set(p.efficiency.selectors)
    assert {0.05, 0.1, 0.25, 0.5, 1.0} <= set(p.efficiency.budgets)
    assert len(p.efficiency.seeds) >= 2
    for datasets, n_test in (
        (p.evaluation.datasets, p.evaluation.n_test),
        (p.efficiency.datasets, p.efficiency.n_test),
    ):
        assert n_test >= 200 and len(datasets) >= 3
        assert all(TASKS[d].kind == "classification" for d in datasets)
    assert set(p.evaluation.models.values()) == {"teacher", "student", "distilled"}
