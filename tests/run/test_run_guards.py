"""The runner's guards: its own run folder, one run at a time, no stale inputs, clear errors, no leaked key."""

import json
import os

import pytest

from compeffdist_utils.cli import main
from compeffdist_utils.core.config import ParamsError, load_params, params_from_dict
from compeffdist_utils.run.runner import RunError, Runner, select_stages
from tests.fake_server import serve
from tests.run.toy_project import make_project

# Stage 00 writes texts (and fails for imdb == 13); stage 01 reads them through stage.require().
CODE_00 = """
from compeffdist_utils.stage.stage import Stage
from compeffdist_utils.core.io import write_jsonl
stage = Stage.open("00_first", params_path, overrides, run_dir)
n = stage.params.corpus.per_domain["imdb"]
if n == 13:
    raise ValueError("stage 00 refuses 13")
write_jsonl(stage.output("corpus/texts.jsonl"), [{"n": n}])
stage.finish()
"""
CODE_01 = """
from compeffdist_utils.stage.stage import Stage
from compeffdist_utils.core.io import read_jsonl, write_jsonl
from compeffdist_utils.core.config import DecodingParams
stage = Stage.open("01_second", params_path, overrides, run_dir)
texts = read_jsonl(stage.require("corpus/texts.jsonl", "00_first"))
if stage.params.models.teacher.backend == "openai":
    stage.teacher().chat(["hi"], DecodingParams(max_new_tokens=4))
write_jsonl(stage.output("second/out.jsonl"), texts)
stage.finish()
"""


@pytest.fixture()
def project(tmp_path):
    return make_project(tmp_path, {"00_first": CODE_00, "01_second": CODE_01})


def _run(project, overrides=None, run_dir=None, **kw):
    return Runner(project / "params/p.yaml", overrides or {}, run_dir, root=project).run(progress=False, **kw)


def test_a_run_folder_never_holds_the_project(project):
    for name in ("..", "."):
        with pytest.raises(ParamsError, match="run_name: .*names no folder of its own"):
            params_from_dict({"run_name": name})
    for run_dir in (project, project / "notebooks"):
        with pytest.raises(RunError, match="contains the project's notebooks or pyproject.toml"):
            Runner(project / "params/p.yaml", run_dir=run_dir, root=project)
    assert sorted(p.name for p in (project / "notebooks").iterdir()) == ["00_first.ipynb", "01_second.ipynb"]


def test_a_second_run_on_a_busy_folder_refuses_naming_the_holder_and_a_stale_lock_is_taken(project):
    from compeffdist_utils.run.runlock import run_lock

    run_dir = project / "reports/ci"
    with run_lock(run_dir), pytest.raises(RuntimeError, match=rf"in use by another run \(PID {os.getpid()}"):
        _run(project)
    assert not (run_dir / "manifest.json").exists()
    (run_dir / ".lock").write_text("999999999\n")  # left by a process that died holding it
    assert [s["status"] for s in _run(project)["stages"]] == ["ok", "ok"]


def test_a_stage_refuses_inputs_of_a_failed_or_different_producer(project):
    assert [s["status"] for s in _run(project)["stages"]] == ["ok", "ok"]
    with pytest.raises(RunError, match="stage 00_first failed"):
        _run(project, {"corpus.per_domain.imdb": 13})
    # texts.jsonl is still there from the first run, but its producer's last run failed
    with pytest.raises(RunError, match=r"StaleInputError: .*00_first ended 'failed' in its last run"):
        _run(project, {"corpus.per_domain.imdb": 13}, stages="01")
    _run(project)  # all ok again
    with pytest.raises(RunError, match="00_first last ran with other params"):
        _run(project, {"corpus.per_domain.imdb": 5}, stages="01")


def test_bad_model_specs_stop_the_run_before_stage_00(project, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    overrides = {"models.student": "no-such-model", "models.embedder": "someorg/not-cached-embedder"}
    with pytest.raises(RunError) as info:
        _run(project, overrides)
    msg = str(info.value)
    assert "nothing was run" in msg and "models.student: model folder not found: 'no-such-model'" in msg
    assert "models.embedder: hub model 'someorg/not-cached-embedder' is not cached and needs network" in msg
    assert not (project / "reports/ci/manifest.json").exists()


def test_validate_reports_every_bad_count_budget_and_spec_at_once(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    p = tmp_path / "p.yaml"
    p.write_text(
        "corpus: {per_domain: {imdb: -3}}\nselection: {budget: 1.5}\nefficiency: {budgets: [0.5, 2.5]}\n"
    )
    assert main(["validate", str(p)]) == 2
    err = capsys.readouterr().err
    assert "corpus.per_domain.imdb: Input should be greater than or equal to 0" in err
    assert "selection.budget: Value error, budget 1.5 is neither a fraction" in err
    assert "efficiency.budgets: Value error, budget 2.5" in err and "Traceback" not in err
    p.write_text("models: {student: no-such-model, embedder: someorg/not-cached}\n")
    assert main(["validate", str(p)]) == 2
    err = capsys.readouterr().err
    assert "models.student: model folder not found" in err and "models.embedder: hub model" in err


def test_one_line_errors_for_bad_sets_params_manifests_and_stage_ranges(
    project, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(project)  # the CLI finds its project from the working directory
    params = str(project / "params/p.yaml")
    assert main(["validate", params, "--set", "run_name=[unclosed"]) == 2
    err = capsys.readouterr().err
    assert "--set 'run_name=[unclosed': the value is not valid YAML" in err and "Traceback" not in err
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    with pytest.raises(ParamsError, match=rf"params file {empty} is empty"):
        load_params(empty)
    runner = Runner(params, root=project)
    with pytest.raises(RunError, match="'05-03' runs backwards"):
        select_stages(runner.stages, "05-03")
    with pytest.raises(RunError, match="expected numbers like"):
        select_stages(runner.stages, "0-1-2")
    manifest = project / "reports/ci/manifest.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("[1, 2]")
    assert main(["run", params, "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"{manifest} is not a manifest this kit wrote" in err and "move it aside" in err
    assert "Traceback" not in err


def test_a_key_echoed_by_the_server_lands_in_no_file(project, monkeypatch):
    secret = "sk-echo-" + "f00dcafe" * 4
    monkeypatch.setenv("CDK_ECHO_KEY", secret)

    def echo(h):
        body = {"error": {"message": f"unauthorized: {h.headers['Authorization']} (key {secret})"}}
        return 401, "application/json", json.dumps(body).encode()

    with serve(echo) as (url, _):
        teacher = {"backend": "openai", "base_url": url, "model": "m", "api_key_env": "CDK_ECHO_KEY",
                   "max_retries": 0}  # fmt: skip
        overrides = {"models.teacher": teacher, "cache_dir": str(project / "cache")}
        with pytest.raises(RunError) as info:
            _run(project, overrides)
    assert "HTTP 401" in str(info.value) and secret not in str(info.value)
    run_dir = project / "reports/ci"
    written = [p for p in [*run_dir.rglob("*"), *(project / "cache").rglob("*")] if p.is_file()]
    assert {"manifest.json", "report.html", "01_second.ipynb"} <= {p.name for p in written}
    for path in written:
        assert secret.encode() not in path.read_bytes(), f"API key found in {path}"
    failed = json.loads((run_dir / "manifest.json").read_text())["stages"][-1]
    assert failed["status"] == "failed" and "[redacted]" in failed["error"]
