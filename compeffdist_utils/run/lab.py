"""``make lab``: JupyterLab on the project, with the kit's kernel, on 127.0.0.1 behind a fresh token.

The notebooks name the ``python3`` kernel; a server started from the kit's environment runs that kernel
with its own interpreter (jupyter_client swaps ``python`` for the server's ``sys.executable``), so the
notebooks import this checkout's package with its pinned dependencies. The token is generated per start
(``secrets``) and handed to the server through ``$JUPYTER_TOKEN``, so it never sits in the process list;
the URL with the token is printed once, for the user to open.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from compeffdist_utils.stage.stage import find_project_root

DEFAULT_PORT = 8888


class LabError(RuntimeError):
    """JupyterLab did not start or answer; the message says what happened and names its log."""


@dataclass
class LabServer:
    """A running JupyterLab: where it listens, its token and its process (log in ``log_path``)."""

    proc: subprocess.Popen
    port: int
    token: str
    root: Path
    log_path: Path | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "lab") -> str:
        """A page of this server with the token, e.g. ``url("lab/tree/notebooks/02_clustering.ipynb")``."""
        return f"{self.base}/{path}?token={self.token}"


def free_port(start: int = DEFAULT_PORT, tries: int = 50) -> int:
    """The first port from ``start`` that nothing on 127.0.0.1 listens on."""
    for port in range(start, start + tries):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise LabError(f"no free port among {start}-{start + tries - 1}; pass --port")


def lab_command(root: Path, port: int, ip: str = "127.0.0.1", expose_app: bool = False) -> list[str]:
    """The ``jupyter lab`` command line for ``root``; ``expose_app`` sets ``window.jupyterapp`` (tests)."""
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.root_dir={root}",
        f"--ServerApp.ip={ip}", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
    ]  # fmt: skip
    if expose_app:
        cmd.append("--LabApp.expose_app_in_browser=True")
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI run as root; Jupyter refuses it
        cmd.append("--allow-root")
    return cmd


def start_lab(
    root: Path,
    port: int | None = None,
    token: str | None = None,
    *,
    ip: str = "127.0.0.1",
    expose_app: bool = False,
    log_path: Path | None = None,
    env: dict[str, str] | None = None,
) -> LabServer:
    """Start JupyterLab in the background on ``root`` (a fresh token unless given); returns at once.

    Its log goes to ``log_path``, or to this process's console when None.
    """
    port = port or free_port()
    token = token or secrets.token_urlsafe(24)
    log = open(log_path, "wb") if log_path else None  # the child holds its own copy once started
    try:
        proc = subprocess.Popen(
            lab_command(Path(root).resolve(), port, ip, expose_app),
            stdout=log,
            stderr=subprocess.STDOUT if log else None,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {}), "JUPYTER_TOKEN": token},
        )
    finally:
        if log:
            log.close()
    return LabServer(proc, port, token, Path(root).resolve(), log_path)


def wait_until_ready(server: LabServer, timeout: float = 120.0) -> None:
    """Block until the server answers its API with the token; a clear error if it exits or stays silent."""
    deadline = time.time() + timeout
    while True:
        if server.proc.poll() is not None:
            raise LabError(f"JupyterLab exited with code {server.proc.returncode}{_log_hint(server)}")
        try:
            with urllib.request.urlopen(server.url("api/status"), timeout=2) as reply:
                if reply.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        if time.time() > deadline:
            raise LabError(
                f"JupyterLab did not answer on port {server.port} within {timeout:.0f} s{_log_hint(server)}"
            )
        time.sleep(0.5)


def _log_hint(server: LabServer) -> str:
    if server.log_path is None or not server.log_path.is_file():
        return ""
    return f"; the end of its log ({server.log_path}):\n{server.log_path.read_text(errors='replace')[-2000:]}"


def stop_lab(server: LabServer) -> None:
    """Stop the server and, with it, the kernels it started."""
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


@contextlib.contextmanager
def running_lab(root: Path, **kwargs) -> Iterator[LabServer]:
    """:func:`start_lab`, ready to use, stopped on exit (tests and scripts)."""
    server = start_lab(root, **kwargs)
    try:
        wait_until_ready(server)
        yield server
    finally:
        stop_lab(server)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="make lab", description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=int(os.environ.get("LAB_PORT") or 0) or None,
                    help=f"default: $LAB_PORT, else the first free port from {DEFAULT_PORT}")  # fmt: skip
    ap.add_argument("--ip", default="127.0.0.1", help="listen address (0.0.0.0 to reach it from elsewhere)")
    ap.add_argument("--root", type=Path, default=None, help="the folder it serves (default: the project)")
    ns = ap.parse_args(argv)
    root = (ns.root or find_project_root()).resolve()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a plain kill stops the server too (finally)
    server = start_lab(root, ns.port, ip=ns.ip)
    try:
        wait_until_ready(server)
        print(f"\nJupyterLab on {root}  (kernel python3 = {sys.executable})")
        print(f"  port:  {server.port}")
        print(f"  token: {server.token}  (new at every start)")
        print(f"  open:  {server.url('lab/tree/notebooks')}")
        print("Ctrl-C stops it.", flush=True)
        return server.proc.wait()
    except LabError as err:
        print(f"make lab: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop_lab(server)


if __name__ == "__main__":
    sys.exit(main())
