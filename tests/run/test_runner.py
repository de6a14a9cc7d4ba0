"""The runner on a throwaway project of two small notebooks: skip logic, failures, subsets, manifest."""

import json
import re
import shutil

import nbformat
import pytest

from compeffdist_utils.cli import main
from compeffdist_utils.run.runner import RunError, Runner, select_stages
from tests.run.toy_project import ROOT, make_project, write_notebook

STAGE_CODE = """
from compeffdist_utils.stage.stage import Stage
from compeffdist_utils.core.io import write_jsonl
stage = Stage.open({name!r}, params_path, overrides, run_dir)
if stage.params.corpus.per_domain.get("imdb") == 13 and {name!r}.startswith("01"):
    raise ValueError("stage two refuses 13")
write_jsonl(stage.output("{name}/out.jsonl"), [{{"n": stage.params.corpus.per_domain["imdb"]}}])
stage.finish(done=True)
"""


@pytest.fixture()
def project(tmp_path):
    return make_project(tmp_path, {name: STAGE_CODE.format(name=name) for name in ("00_first", "01_second")})


def _run(project, **kw):
    overrides = kw.pop("overrides", {})
    return Runner(project / "params/p.yaml", overrides, root=project).run(
        progress=False, screenshot=False, **kw
    )


def test_runs_in_order_then_skips_unchanged_stages(project):
    m = _run(project)
    assert [s["name"] for s in m["stages"]] == ["00_first", "01_second"]
    for s in m["stages"]:
        assert s["status"] == "ok" and s["seconds"] > 0
        assert s["outputs"][0].startswith("notebooks/") and f"{s['name']}/out.jsonl" in s["outputs"]
    run_dir = project / "reports/ci"
    assert (run_dir / "report.html").stat().st_size > 1000
    saved = json.loads((run_dir / "manifest.json").read_text())
    assert {"params", "packages", "machine", "teacher_tokens"} <= saved.keys()
    assert saved["packages"]["torch"].startswith("2.13.0")

    m2 = _run(project)
    assert [s["status"] for s in m2["stages"]] == ["skipped", "skipped"]
    # a skipped stage keeps the time it took when it ran, through any number of resumed runs
    assert [s["ran_in_seconds"] for s in m2["stages"]] == [s["seconds"] for s in m["stages"]]
    assert [s["ran_in_seconds"] for s in _run(project)["stages"]] == [s["seconds"] for s in m["stages"]]
    assert f"(ran in {m['stages'][0]['seconds']:.1f})" in (run_dir / "report.html").read_text()
    # a missing output or --force reruns
    (run_dir / "01_second/out.jsonl").unlink()
    assert [s["status"] for s in _run(project)["stages"]] == ["skipped", "ok"]
    assert [s["status"] for s in _run(project, force=True)["stages"]] == ["ok", "ok"]


def test_changed_params_rerun_the_stage_and_everything_after_it(project):
    _run(project)
    m = _run(project, overrides={"corpus.per_domain.imdb": 5})
    assert [s["status"] for s in m["stages"]] == ["ok", "ok"]
    m = _run(project, overrides={"corpus.per_domain.imdb": 5, "training.max_steps": 1})
    assert [s["status"] for s in m["stages"]] == ["skipped", "skipped"]  # no stage here reads training


def test_failing_stage_stops_the_run_names_itself_and_keeps_earlier_outputs(project):
    with pytest.raises(RunError, match=r"stage 01_second failed: ValueError: stage two refuses 13"):
        _run(project, overrides={"corpus.per_domain.imdb": 13})
    run_dir = project / "reports/ci"
    m = json.loads((run_dir / "manifest.json").read_text())
    assert [(s["name"], s["status"]) for s in m["stages"]] == [("00_first", "ok"), ("01_second", "failed")]
    assert (run_dir / "00_first/out.jsonl").exists()


def test_stage_subsets(project):
    m = _run(project, stages="01")
    assert [s["name"] for s in m["stages"]] == ["01_second"]
    runner = Runner(project / "params/p.yaml", root=project)
    assert [s.number for s in select_stages(runner.stages, "00-01")] == ["00", "01"]
    with pytest.raises(RunError, match=r"unknown stage\(s\) \['07'\]"):
        select_stages(runner.stages, "07")


def test_cli_reports_bad_params_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("clustering: {method: dbscan}\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "clustering.method: must be one of" in err and "Traceback" not in err
    assert main(["run", str(bad)]) == 2


# -- reuse follows the code ----------------------------------------------------------------------------

CODE_STAGE = """
from compeffdist_utils.core.config import DecodingParams
from compeffdist_utils.core.io import write_jsonl
from compeffdist_utils.sentibench.metrics import normalise_label
from compeffdist_utils.stage.stage import Stage
stage = Stage.open("00_code", params_path, overrides, run_dir)
answer = stage.teacher().chat(["Say hi"], DecodingParams(max_new_tokens=4))[0]
write_jsonl(stage.output("code/out.jsonl"), [{"label": normalise_label("  Mixed   Case "), "answer": answer}])
stage.finish()
"""

PROGRESS_CODE = """
from compeffdist_utils.stage.stage import Stage
from compeffdist_utils.core.progress import tqdm
from compeffdist_utils.core.io import write_jsonl
stage = Stage.open("01_second", params_path, overrides, run_dir)
for _ in tqdm(range(3), desc="count"):
    pass
write_jsonl(stage.output("01_second/out.jsonl"), [{"n": 1}])
stage.finish()
"""


def test_a_code_change_reruns_the_stage_but_never_asks_the_teacher_again(tmp_path):
    """A scratch copy of the package: the runner and the notebook kernel both import it (PYTHONPATH)."""
    import os
    import subprocess
    import sys

    from tests.fake_server import completion, serve

    shutil.copytree(ROOT / "compeffdist_utils", tmp_path / "compeffdist_utils",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "notebooks").mkdir()
    write_notebook(tmp_path / "notebooks/00_code.ipynb", CODE_STAGE)

    answered = [0]

    def reply(_handler):
        answered[0] += 1
        return 200, "application/json", completion(f"hello {answered[0]}")

    with serve(reply) as (url, calls):
        sets = [f"cache_dir={tmp_path / 'cache'}", "models.teacher.backend=openai",
                f"models.teacher.base_url={url}", "models.teacher.model=fake", "models.teacher.max_retries=0"]  # fmt: skip
        cmd = [sys.executable, "-m", "compeffdist_utils.cli", "run", str(ROOT / "tests/params/ci.yaml"), "--quiet",
               "--run-dir", str(tmp_path / "run")] + [a for s in sets for a in ("--set", s)]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(tmp_path)}

        def run() -> tuple[dict, dict]:
            proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
            assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
            stage = json.loads((tmp_path / "run/manifest.json").read_text())["stages"][0]
            return stage, json.loads((tmp_path / "run/code/out.jsonl").read_text())

        first, out1 = run()
        assert first["status"] == "ok" and out1 == {"label": "mixed case", "answer": "hello 1"}
        assert calls[0] == 1
        helper = tmp_path / "compeffdist_utils/sentibench/metrics.py"
        src = helper.read_text()
        assert "str(text).casefold()" in src
        helper.write_text(src.replace("str(text).casefold()", "str(text).upper()"))  # a changed helper
        again, out3 = run()
        assert again["status"] == "ok" and again["fingerprint"] != first["fingerprint"]
        assert out3 == {"label": "MIXED CASE", "answer": "hello 1"}  # new code, the cached answer
        assert again["teacher_usage"]["cache_hits"] == 1 and again["teacher_usage"]["cache_misses"] == 0
        assert calls[0] == 1
        unrelated = tmp_path / "compeffdist_utils/student_training/training.py"
        unrelated.write_text(unrelated.read_text() + "\n# edited; this stage does not import it\n")
        assert run()[0]["status"] == "skipped"  # code the stage does not import leaves it alone


def test_console_shows_the_running_stage_inner_progress_and_quiet_one_line_per_stage(project, capsys):
    nb = nbformat.read(project / "notebooks/01_second.ipynb", as_version=4)
    nb.cells[1].source = PROGRESS_CODE
    nbformat.write(nb, project / "notebooks/01_second.ipynb")
    Runner(project / "params/p.yaml", root=project).run(progress=True, screenshot=False)
    out = capsys.readouterr().out
    assert "[01_second] · count 3/3" in out  # the kernel's own bar, on the runner's console
    Runner(project / "params/p.yaml", root=project).run(progress=False, force=True, screenshot=False)
    quiet = capsys.readouterr().out.splitlines()
    assert len(quiet) == 2 and all(re.fullmatch(r"\[0[01]_\w+\] ok in [\d.]+ s", line) for line in quiet), (
        quiet
    )
