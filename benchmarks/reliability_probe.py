"""A reliability probe: failure paths through the CLI and the teacher backend, one table row per case.

Run from the project root: ``python benchmarks/reliability_probe.py [--quick]``. Each case builds what
it needs (a fake OpenAI-compatible server on 127.0.0.1, a throwaway project of two small notebooks, a
small tmpfs when run as root) and prints: case, expected, observed, seconds, pass. ``--quick`` runs case
1 with ``timeout_s: 10`` instead of the default 120 s (the row says which).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compeffdist_utils.core.config import DecodingParams, Params  # noqa: E402
from compeffdist_utils.run.runlock import RunFolderBusyError, run_lock  # noqa: E402
from compeffdist_utils.teacher.backends import make_teacher  # noqa: E402
from compeffdist_utils.teacher.cache import ResponseCache  # noqa: E402
from tests.fake_server import completion, drip, drop, serve  # noqa: E402

PY = sys.executable
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
GREEDY = DecodingParams(max_new_tokens=8, temperature=0.0)
ATTRS = "1. **Sarcasm**: Attribute Description - saying the opposite. Attribute Value - strong.\n"
ROWS: list[tuple[str, str, str, float, bool]] = []
TMP = Path(tempfile.mkdtemp(prefix="cdk-probe-"))


def case(name: str, expected: str) -> Callable[[Callable[[], tuple[str, bool]]], None]:
    def run(fn: Callable[[], tuple[str, bool]]) -> None:
        t0 = time.monotonic()
        try:
            observed, ok = fn()
        except Exception as err:  # a probe case that crashes is a failed case, not a crashed probe
            observed, ok = f"probe error {type(err).__name__}: {err}", False
        ROWS.append((name, expected, observed.replace("\n", " ")[:150], time.monotonic() - t0, ok))
        print(f"{'PASS' if ok else 'FAIL'} {name} ({time.monotonic() - t0:.1f} s)", flush=True)

    return run


def cli(*args: str, cwd: Path = ROOT, timeout: float = 600) -> tuple[int, str]:
    """The exit code and the CLI's own error (from its ``compeffdist:`` line on; model loading may print
    progress bars on stderr before it)."""
    done = subprocess.run([PY, "-m", "compeffdist_utils.cli", *args], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip
    err = done.stderr.strip()
    at = err.rfind("compeffdist: ")
    return done.returncode, err[at:] if at >= 0 else err


def one_line(err: str) -> bool:
    return "Traceback" not in err and len(err.splitlines()) <= 2


def openai_sets(url: str, cache: Path, **teacher: object) -> list[str]:
    sets = {"models.teacher.backend": "openai", "models.teacher.base_url": url, "models.teacher.model": "m",
            "cache_dir": str(cache), **{f"models.teacher.{k}": v for k, v in teacher.items()}}  # fmt: skip
    return [x for k, v in sets.items() for x in ("--set", f"{k}={v}")]


def teacher(url: str, **tp: object):  # noqa: ANN201 - a backend
    cache = Path(tempfile.mkdtemp(dir=TMP))
    p = {
        "cache_dir": str(cache),
        "models": {"teacher": {"backend": "openai", "base_url": url, "model": "m", **tp}},
    }
    return make_teacher(Params.model_validate(p)), cache


def run_real(name: str, *extra: str) -> tuple[int, str, Path]:
    run_dir = TMP / name
    rc, err = cli(
        "run", "tests/params/ci.yaml", "--quiet", "--stages", "00-01", "--run-dir", str(run_dir), *extra
    )
    return rc, err, run_dir


def stages(run_dir: Path) -> dict[str, str]:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    return {e["name"]: e["status"] for e in manifest["stages"]}


def project(code_01: str) -> Path:
    """A throwaway project: stage 00 writes a file, stage 01 runs ``code_01`` (cwd notebooks/)."""
    import nbformat  # deferred: only the project cases need it

    root = Path(tempfile.mkdtemp(dir=TMP))
    for d in ("notebooks", "compeffdist_utils", "params"):
        (root / d).mkdir()
    (root / "pyproject.toml").write_text("")
    shutil.copy(ROOT / "tests/params/ci.yaml", root / "params/p.yaml")
    head = "from compeffdist_utils.stage.stage import Stage\nfrom pathlib import Path\nimport time\n"
    for name, body in (("00_first", "stage.output('a/out.txt').write_text('x')\n"), ("01_second", code_01)):
        nb = nbformat.v4.new_notebook()
        nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
        params = nbformat.v4.new_code_cell('params_path = "x"\nrun_dir = None\noverrides = {}')
        params.metadata["tags"] = ["parameters"]
        code = f"{head}stage = Stage.open({name!r}, params_path, overrides, run_dir)\n{body}stage.finish()\n"
        nb.cells = [params, nbformat.v4.new_code_cell(code)]
        nbformat.write(nb, root / f"notebooks/{name}.ipynb")
    return root


def interrupted(sig: str) -> tuple[str, bool]:
    root = project("(Path(stage.run_dir) / 'started').write_text('1')\nwhile Path('../hold').exists():\n"
                   "    time.sleep(0.1)\nstage.output('b/out.txt').write_text('y')\n")  # fmt: skip
    (root / "hold").write_text("")
    proc = subprocess.Popen([PY, "-m", "compeffdist_utils.cli", "run", "params/p.yaml", "--quiet"], cwd=root,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    run_dir = root / "reports/ci"
    while not (run_dir / "started").exists() and proc.poll() is None:
        time.sleep(0.1)
    if sig == "SIGTERM":
        proc.send_signal(signal.SIGTERM)
    else:
        os.killpg(proc.pid, signal.SIGINT)
    err = proc.communicate(timeout=60)[1].strip()
    first = stages(run_dir)
    (root / "hold").unlink()
    rc2, _ = cli("run", "params/p.yaml", "--quiet", cwd=root)
    again = stages(run_dir)
    ok = (proc.returncode == 130 and one_line(err) and first.get("01_second") == "interrupted"
          and rc2 == 0 and again == {"00_first": "skipped", "01_second": "ok"})  # fmt: skip
    return f"rc {proc.returncode}; {err}; manifest {first}; rerun {again}", ok


def disk_full() -> tuple[str, bool]:
    if os.geteuid() != 0:
        return "skipped: mounting a tmpfs needs root", False
    disk = TMP / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], check=True)
    try:
        root = project(
            "if Path('../fill').exists():\n    stage.output('b/big.bin').write_bytes(b'0' * 200_000_000)\n"
        )
        (root / "fill").write_text("")
        rc, err = cli("run", "params/p.yaml", "--quiet", "--run-dir", str(disk / "run"), cwd=root)
        first = stages(disk / "run")
        (disk / "run/b/big.bin").unlink()
        (root / "fill").unlink()
        rc2, _ = cli("run", "params/p.yaml", "--quiet", "--run-dir", str(disk / "run"), cwd=root)
        again = stages(disk / "run")
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
    ok = rc == 1 and one_line(err) and "disk full" in err and first.get("01_second") == "failed" and rc2 == 0
    return f"rc {rc}; {err}; manifest {first}; rerun after freeing space {again}", ok


def sleepy(h):  # noqa: ANN001, ANN201 - a fake server's reply
    time.sleep(3600)


def all_cases(quick: bool) -> None:  # noqa: PLR0915 - one block per case reads best as a list
    timeout = 10 if quick else 120

    @case(f"1 GET /models ok, no completion ever (timeout_s {timeout}{'' if quick else ', the default'})",
          f"stage 01 fails < {2 * timeout} s naming URL + what was waited for")  # fmt: skip
    def _() -> tuple[str, bool]:
        with serve(sleepy) as (url, _):
            sets = ["--set", f"models.teacher.timeout_s={timeout}"] if quick else []
            rc, err, run_dir = run_real("c1", *openai_sets(url, TMP / "c1"), *sets)
        manifest = json.loads((run_dir / "manifest.json").read_text())
        took = {e["name"]: e["seconds"] for e in manifest["stages"]}["01_attributes"]
        # the stage's seconds include starting its kernel and loading the package (~10-20 s here)
        ok = rc == 1 and url in err and "POST /chat/completions" in err and took < 2 * timeout + 20
        return f"rc {rc}, stage 01 failed after {took:.0f} s: {err[:300]}", ok

    @case(
        "2 reply dripped 1 byte/0.2 s, timeout_s 5, no retries", "fails at ~5 s, says bytes came too slowly"
    )
    def _() -> tuple[str, bool]:
        with serve(drip(0.2, 2000)) as (url, _):
            t, _ = teacher(url, timeout_s=5, max_retries=0)
            t0 = time.monotonic()
            try:
                t.chat(["hi"], GREEDY)
                return "answered", False
            except RuntimeError as err:
                took = time.monotonic() - t0
                return f"{took:.1f} s: {err}", took < 7 and "too slowly" in str(err)

    @case("3 teacher rejects every request (HTTP 400)", "stage 01 failed with counts + first error")
    def _() -> tuple[str, bool]:
        reject = (400, "application/json", b'{"message": "model not found"}')
        with serve(lambda h: reject) as (url, _):
            rc, err, run_dir = run_real("c3", *openai_sets(url, TMP / "c3"))
        st = stages(run_dir)
        return f"rc {rc}; {err[:250]}; {st}", rc == 1 and "8 of 8 failed" in err and st[
            "01_attributes"
        ] == "failed"

    @case("4 corpus.per_domain.imdb: 100000", "validate refuses, naming what imdb holds")
    def _() -> tuple[str, bool]:
        rc, err = cli("validate", "params/tiny.yaml", "--set", "corpus.per_domain.imdb=100000")
        return f"rc {rc}: {err}", rc == 2 and "ask at most" in err and "Traceback" not in err

    @case("5 disk full during stage 01 (8 MiB tmpfs)", "one line; stage failed in manifest; rerun resumes")
    def _() -> tuple[str, bool]:
        return disk_full()

    @case("6 Ctrl-C (SIGINT to the process group) in stage 01", "one line, exit 130; 'interrupted'; resumes")
    def _() -> tuple[str, bool]:
        return interrupted("SIGINT")

    @case("6b SIGTERM in stage 01", "one line, exit 130; 'interrupted'; resumes")
    def _() -> tuple[str, bool]:
        return interrupted("SIGTERM")

    @case("7 two runs, two folders, one cache, at once", "8 requests for 8 prompts")
    def _() -> tuple[str, bool]:
        def answer(h):  # noqa: ANN001, ANN202
            time.sleep(0.3)
            return 200, "application/json", completion(ATTRS)

        with serve(answer) as (url, calls):
            rcs: list[int] = []
            runs = [threading.Thread(target=lambda n=n: rcs.append(run_real(f"c7{n}", *openai_sets(url, TMP / "c7"))[0]))
                    for n in "ab"]  # fmt: skip
            for r in runs:
                r.start()
            for r in runs:
                r.join()
        return f"rc {rcs}; {calls[0]} requests for 8 prompts", rcs == [0, 0] and calls[0] == 8

    @case("8a params file with a non-UTF-8 byte", "error names the file")
    def _() -> tuple[str, bool]:
        p = TMP / "bad.yaml"
        p.write_bytes(b"run_name: caf\xe9\n")
        rc, err = cli("validate", str(p))
        return f"rc {rc}: {err}", rc == 2 and str(p) in err and one_line(err)

    @case("8b inventory with a non-UTF-8 byte", "error names the file")
    def _() -> tuple[str, bool]:
        from compeffdist_utils.clustering.inventory import load_inventory  # deferred: only this case

        p = TMP / "inv.csv"
        p.write_bytes(b"attr,count\ncaf\xe9,3\n")
        try:
            load_inventory(p)
            return "read", False
        except ValueError as err:
            return str(err), str(p) in str(err)

    @case("8c --run-dir naming an existing file", "one line, nothing overwritten")
    def _() -> tuple[str, bool]:
        f = TMP / "a-file"
        f.write_text("keep")
        rc, err = cli("run", "tests/params/ci.yaml", "--run-dir", str(f))
        return f"rc {rc}: {err}", rc == 1 and one_line(err) and f.read_text() == "keep"

    @case("9a a dict-valued text column (JSONL)", "error names file and line")
    def _() -> tuple[str, bool]:
        (TMP / "c.jsonl").write_text('{"text": "a fine text"}\n{"text": {"a": 1}}\n')
        corpus = {"source": "files", "min_chars": 1, "files": [{"path": str(TMP / "c.jsonl")}]}
        rc, err, _ = run_real("c9", "--set", f"corpus={json.dumps(corpus)}")
        return f"rc {rc}: {err[:250]}", rc == 1 and "line 2" in err and "JSON objects" in err

    @case("9b a duplicated YAML key", "error names key and lines")
    def _() -> tuple[str, bool]:
        p = TMP / "dup.yaml"
        p.write_text("seed: 1\nseed: 2\n")
        rc, err = cli("validate", str(p))
        return f"rc {rc}: {err}", rc == 2 and "written twice" in err

    @case("also: server drops the connection", "says dropped, not unreachable")
    def _() -> tuple[str, bool]:
        with serve(drop) as (url, _):
            t, _ = teacher(url, max_retries=1)
            try:
                t.chat(["hi"], GREEDY)
                return "answered", False
            except RuntimeError as err:
                return str(err), "dropped it" in str(err) and "unreachable" not in str(err)

    @case("also: api_key_env set but the variable unset", "validate names the variable")
    def _() -> tuple[str, bool]:
        ENV.pop("CDK_PROBE_KEY", None)
        rc, err = cli("validate", "params/paper.yaml", "--set", "models.teacher.api_key_env=CDK_PROBE_KEY")
        return f"rc {rc}: {err[-160:]}", rc == 2 and "CDK_PROBE_KEY is not set" in err

    @case("also: malformed base_url", "validate refuses")
    def _() -> tuple[str, bool]:
        rc, err = cli("validate", "params/paper.yaml", "--set", "models.teacher.base_url=localhost:8000/v1")
        return f"rc {rc}: {err}", rc == 2 and "not an http(s) URL" in err

    @case("also: cache info on a damaged cache", "reports it, moves nothing")
    def _() -> tuple[str, bool]:
        (TMP / "dc").mkdir()
        (TMP / "dc/responses.sqlite").write_bytes(b"garbage" * 100)
        rc, err = cli("cache", "info", "params/tiny.yaml", "--set", f"cache_dir={TMP / 'dc'}")
        files = sorted(p.name for p in (TMP / "dc").iterdir())
        return f"rc {rc}: {err}; files {files}", files == ["responses.sqlite"] and one_line(err)

    @case("also: permanent HTTP 501", "not retried (1 request)")
    def _() -> tuple[str, bool]:
        with serve(lambda h: (501, "application/json", b'{"message": "no"}')) as (url, calls):
            t, _ = teacher(url)
            try:
                t.chat(["hi"], GREEDY)
            except RuntimeError as err:
                return f"{calls[0]} request(s): {err}", calls[0] == 1
        return "answered", False

    @case("held: cache poisoning (HTML 200 reply)", "retried, fails, nothing cached")
    def _() -> tuple[str, bool]:
        with serve(lambda h: (200, "text/html", b"<html>502</html>")) as (url, calls):
            t, cache = teacher(url, max_retries=1)
            try:
                t.chat(["hi"], GREEDY)
                return "answered", False
            except RuntimeError as err:
                n = ResponseCache(cache / "responses.sqlite").count()
                return f"{calls[0]} requests, {n} cached: {str(err)[:120]}", n == 0

    @case("held: run_name '..'", "refused")
    def _() -> tuple[str, bool]:
        rc, err = cli("validate", "params/tiny.yaml", "--set", "run_name=..")
        return f"rc {rc}: {err[-120:]}", rc == 2

    @case("held: late validation (bad model spec)", "refused before stage 00")
    def _() -> tuple[str, bool]:
        rc, err = cli(
            "run",
            "tests/params/ci.yaml",
            "--run-dir",
            str(TMP / "lv"),
            "--set",
            "models.student=no/such-model",
        )
        return f"rc {rc}: {err[:160]}", rc == 1 and not (TMP / "lv/manifest.json").exists()

    @case("held: key echoed by the server (401)", "redacted from the error")
    def _() -> tuple[str, bool]:
        secret = "sk-probe-" + "ab12" * 8
        ENV["CDK_PROBE_KEY"] = os.environ["CDK_PROBE_KEY"] = secret
        with serve(
            lambda h: (401, "application/json", json.dumps({"message": f"bad {secret}"}).encode())
        ) as (url, _):
            t, _ = teacher(url, api_key_env="CDK_PROBE_KEY")
            try:
                t.chat(["hi"], GREEDY)
                return "answered", False
            except RuntimeError as err:
                return str(err)[:150], secret not in str(err)

    @case("held: second run on a busy run folder", "refused naming the holder")
    def _() -> tuple[str, bool]:
        held = TMP / "lk-held"
        code = (
            "import pathlib, time\nfrom compeffdist_utils.run.runlock import run_lock\n"
            f"with run_lock(pathlib.Path({str(TMP / 'lk')!r})):\n"
            f"    pathlib.Path({str(held)!r}).write_text('1')\n    time.sleep(5)\n"
        )
        holder = subprocess.Popen([PY, "-c", code], env=ENV)
        while not held.exists() and holder.poll() is None:
            time.sleep(0.1)
        try:
            with run_lock(TMP / "lk"):
                return "second run got the lock", False
        except RunFolderBusyError as err:
            return str(err)[:150], str(holder.pid) in str(err)
        finally:
            holder.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="case 1 with timeout_s 10 instead of 120")
    all_cases(ap.parse_args().quick)
    print(f"\nmachine: {socket.gethostname()}, {os.cpu_count()} CPUs; python {sys.version.split()[0]}\n")
    print("| case | expected | observed | seconds | pass |\n|---|---|---|---:|---|")
    for name, expected, observed, seconds, ok in ROWS:
        print(
            f"| {name} | {expected} | {observed.replace('|', '/')} | {seconds:.1f} | {'yes' if ok else 'NO'} |"
        )
    print(f"\n{sum(r[4] for r in ROWS)} of {len(ROWS)} cases pass")
    shutil.rmtree(TMP, ignore_errors=True)
    return 0 if all(r[4] for r in ROWS) else 1


if __name__ == "__main__":
    sys.exit(main())
