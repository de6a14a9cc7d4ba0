"""The claim (a) trials of docs/STUDY_TRIALS.md: per-dataset paired differences of grid points against the
study's base student (stage 07's predictions), with the kit's own bootstrap. Run from the project root:
  python benchmarks/study_trial_diffs.py reports/study POINT_EVAL_DIR:MODEL [...]"""

import sys
from pathlib import Path

from compeffdist_utils.evaluation.significance import model_stats
from compeffdist_utils.sentibench import load_for_run
from compeffdist_utils.stats import uncertainty as U

study = Path(sys.argv[1])
names = ["sc/sst2", "sc/twitter", "multifaced/irony18"]
seeds = [42, 52, 62]
bench = load_for_run("../shared/sentibench", names, 4, study, Path("."))
base = model_stats(study / "eval", "base_student", bench.datasets, seeds)
for arg in sys.argv[2:]:
    folder, model = arg.rsplit(":", 1)
    st = model_stats(Path(folder), model, bench.datasets, seeds)
    parts = []
    for a, b in zip(st, base, strict=True):
        d = U.compare(a, b, (model, "base"), a.name)
        parts.append(
            f"{a.name.split('/')[-1]} {U.point_score(a):.1f} ({d.diff:+.1f} [{d.low:+.1f}, {d.high:+.1f}])"
        )
    d = U.compare(st, base, (model, "base"), "overall")
    print(f"{arg}: " + " | ".join(parts) + f" | overall {d.diff:+.1f} [{d.low:+.1f}, {d.high:+.1f}]")
