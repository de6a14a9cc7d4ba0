"""A run stopped from outside (Ctrl-C, SIGTERM) or by a full disk: one line, the stage recorded, the run
folder resumable (issue 21, cases 5-6). The CLI runs in a subprocess so real signals reach it."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.run.toy_project import ROOT, make_project

CODE_00 = """
from compeffdist_utils.stage.stage import Stage
from compeffdist_utils.core.io import write_jsonl
stage = Stage.open("00_first", params_path, overrides, run_dir)
write_jsonl(stage.output("first/out.jsonl"), [{"n": 1}])
stage.finish()
"""
# Stage 01 (run with cwd notebooks/) waits while the project holds a file "hold" (a long teacher call,
# say), or fills the disk while it holds "fill"; the params stay the same, so a rerun can resume.
CODE_01 = """
import time
from pathlib import Path
from compeffdist_utils.stage.stage import Stage
stage = Stage.open("01_second", params_path, overrides, run_dir)
if Path("../fill").exists():
    with open(stage.output("second/big.bin"), "wb") as fh:
        fh.write(b"0" * 200_000_000)
(Path(stage.run_dir) / "started").write_text("1")
while Path("../hold").exists():
    time.sleep(0.1)
stage.output("second/done.txt").write_text("done")
stage.finish()
"""


@pytest.fixture()
def project(tmp_path):
    return make_project(tmp_path, {"00_first": CODE_00, "01_second": CODE_01})


def _cli(project: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-m", "compeffdist_utils.cli", "run", "params/p.yaml", "--quiet", *args],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group: a Ctrl-C reaches it and its kernel, as in a terminal
        # as a terminal starts it: a shell's background job (`cmd &`, nohup) inherits SIGINT ignored, and
        # the tests would then wait for a Ctrl-C that nothing can deliver
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


def _stages(run_dir: Path) -> dict[str, str]:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    return {e["name"]: e["status"] for e in manifest["stages"]}


@pytest.mark.parametrize("how", ["SIGTERM", "Ctrl-C"])
def test_an_interrupted_stage_is_recorded_in_one_line_and_the_run_resumes(project, how):
    run_dir = project / "reports/ci"
    (project / "hold").write_text("")
    proc = _cli(project)
    deadline = time.monotonic() + 120
    while not (run_dir / "started").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    if how == "SIGTERM":
        proc.send_signal(signal.SIGTERM)
    else:
        os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C: the whole foreground group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "01_second" in err and "interrupted" in err and "rerun" in err
    assert _stages(run_dir) == {"00_first": "ok", "01_second": "interrupted"}

    (project / "hold").unlink()
    again = _cli(project)  # the same command: stage 00 is kept, stage 01 runs again
    out, err = again.communicate(timeout=180)
    assert again.returncode == 0, err
    assert _stages(run_dir) == {"00_first": "skipped", "01_second": "ok"}


def _mount_small_disk(path: Path, size: str) -> bool:
    path.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True)  # fmt: skip
    return done.returncode == 0


def test_a_full_disk_records_the_failed_stage_in_one_line_and_the_run_resumes(project, tmp_path):
    """A real small disk (tmpfs; needs root to mount, as in the kit's CI container) filled by stage 01."""
    disk = tmp_path / "disk"
    if not _mount_small_disk(disk, "8m"):
        pytest.skip("mounting a small tmpfs needs root")
    try:
        run_dir = disk / "run"
        (project / "fill").write_text("")
        proc = _cli(project, "--run-dir", str(run_dir))
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 1, err
        assert "Traceback" not in err and len(err.strip().splitlines()) <= 2, err
        assert "01_second" in err and "disk full" in err
        manifest = json.loads((run_dir / "manifest.json").read_text())
        failed = {e["name"]: e for e in manifest["stages"]}["01_second"]
        assert failed["status"] == "failed" and "No space left on device" in failed["error"]

        (run_dir / "second/big.bin").unlink()  # space freed: the same folder resumes
        (project / "fill").unlink()
        again = _cli(project, "--run-dir", str(run_dir))
        _, err = again.communicate(timeout=180)
        assert again.returncode == 0, err
        assert _stages(run_dir) == {"00_first": "skipped", "01_second": "ok"}
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
