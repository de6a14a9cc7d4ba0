"""Open a page in headless Chromium: which images really loaded, and a screenshot of its top.

Used for the run's ``report.png``, by the test that checks ``report.html`` in a real browser and by the
one that runs notebook 02 in JupyterLab (:func:`open_page` gives them a tab to drive). It
speaks the Chrome DevTools Protocol over ``--remote-debugging-pipe`` (JSON messages separated by NUL on
file descriptors 3 and 4), so it needs no driver, no websocket library and no free port.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ENV = "COMPEFFDIST_CHROMIUM"  # an explicit browser binary, when it is not on PATH

# Runs in the page once it has loaded: every <img> with its decoded size, and the page height.
_IMAGES_JS = """JSON.stringify({
  images: [...document.images].map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth,
                                            src_bytes: i.src.length})),
  height: document.documentElement.scrollHeight,
  title: document.title})"""


class BrowserError(RuntimeError):
    """Chromium could not be started or did not answer; the message says what happened."""


@dataclass
class PageCheck:
    """What the browser saw: one entry per ``<img>`` (``alt``, ``complete``, natural ``width``)."""

    images: list[dict[str, Any]]
    height: int
    title: str
    screenshot: Path | None = None
    seconds: float = 0.0
    broken: list[dict[str, Any]] = field(default_factory=list)


def find_chromium() -> str | None:
    """The Chromium binary: ``$COMPEFFDIST_CHROMIUM``, else the first known name on PATH."""
    explicit = os.environ.get(CHROMIUM_ENV)
    if explicit:
        return explicit if shutil.which(explicit) else None
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


class _Pipe:
    def __init__(self, binary: str, profile: str):
        to_browser_r, self._w = os.pipe()
        self._r, from_browser_w = os.pipe()
        args = [
            binary, "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
            "--no-first-run", "--no-default-browser-check", "--hide-scrollbars", f"--user-data-dir={profile}",
            "--allow-file-access-from-files", "about:blank",
        ]  # fmt: skip

        # The child sees its ends of the pipes as fds 3 (commands in) and 4 (messages out). dup2 makes
        # them inheritable; every other fd of this process is non-inheritable (PEP 446), so keeping
        # fds open (close_fds=False) passes exactly these two.
        def to_fds() -> None:
            for src, dst in ((to_browser_r, 3), (from_browser_w, 4)):
                if src == dst:  # dup2 onto itself keeps close-on-exec
                    os.set_inheritable(dst, True)
                else:
                    os.dup2(src, dst)

        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=to_fds,
        )  # fmt: skip
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buf = b""
        self._next_id = 0

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = 60.0) -> dict[str, Any]:  # fmt: skip
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._next_id:
                    if "error" in reply:
                        raise BrowserError(f"Chromium refused {method}: {reply['error']}")
                    return reply.get("result", {})
            if time.time() > deadline or self.proc.poll() is not None:
                raise BrowserError(f"Chromium did not answer {method} within {timeout:.0f} s")
            ready, _, _ = select.select([self._r], [], [], 0.5)
            if ready:
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    raise BrowserError(f"Chromium closed the connection during {method}")
                self._buf += chunk

    def close(self) -> None:
        try:
            os.write(self._w, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            os.close(self._w)
            os.close(self._r)


class Page:
    """One tab of a headless Chromium: navigate, evaluate JavaScript, wait for a condition, screenshot."""

    def __init__(self, pipe: _Pipe, session: str):
        self._pipe = pipe
        self._session = session

    def navigate(self, url: str) -> None:
        self._pipe.call("Page.navigate", {"url": url}, self._session)

    def evaluate(self, expression: str, await_promise: bool = False, timeout: float = 60.0) -> Any:
        """The value of ``expression`` in the page (JSON-able values only); a thrown error is a BrowserError."""
        res = self._pipe.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": await_promise},
            self._session,
            timeout=timeout,
        )
        if "exceptionDetails" in res:
            details = res["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"the page threw: {text}")
        return res.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float, what: str, poll: float = 0.5) -> Any:
        """Poll ``expression`` until it is truthy and return it; after ``timeout`` s, an error naming ``what``."""
        deadline = time.time() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.time() > deadline:
                raise BrowserError(f"{what}: not seen within {timeout:.0f} s")
            time.sleep(poll)

    def screenshot(self, path: Path) -> Path:
        data = self._pipe.call("Page.captureScreenshot", {"format": "png"}, self._session)["data"]
        path.write_bytes(base64.b64decode(data))
        return path


@contextlib.contextmanager
def open_page(width: int = 1280, height: int = 1100, binary: str | None = None) -> Iterator[Page]:
    """A blank tab of a fresh headless Chromium (its own throw-away profile), closed on exit."""
    binary = binary or find_chromium()
    if binary is None:
        raise BrowserError(f"no Chromium found (looked for {', '.join(CHROMIUM_NAMES)} and ${CHROMIUM_ENV})")
    with tempfile.TemporaryDirectory(prefix="cdk-chromium-") as profile:
        pipe = _Pipe(binary, profile)
        try:
            target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            pipe.call("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session)  # fmt: skip
            yield Page(pipe, session)
        finally:
            pipe.close()


def check_page(
    html_path: Path,
    screenshot: Path | None = None,
    width: int = 1280,
    height: int = 1100,
    timeout: float = 90.0,
    binary: str | None = None,
) -> PageCheck:
    """Load ``html_path`` from disk, wait for its load event, list its images, optionally screenshot the top."""
    t0 = time.time()
    with open_page(width, height, binary) as page:
        page.navigate(Path(html_path).resolve().as_uri())
        # The load event has fired when readyState is "complete": every image is decoded.
        page.wait_for('document.readyState === "complete"', timeout, f"{html_path} finishing loading", 0.2)
        found = json.loads(page.evaluate(_IMAGES_JS))
        shot = page.screenshot(screenshot) if screenshot is not None else None
    broken = [i for i in found["images"] if not i["complete"] or i["width"] <= 0]
    return PageCheck(
        found["images"], found["height"], found["title"], shot, round(time.time() - t0, 2), broken
    )


def screenshot_report(report: Path, out: Path | None = None) -> Path | None:
    """``report.png`` beside ``report``: the top of the page as a reader first sees it.

    Best effort: without Chromium, or when it fails, the run keeps its report and gets no screenshot
    (None); the browser test is what insists on one.
    """
    if find_chromium() is None:
        return None
    try:
        return check_page(report, screenshot=out or report.with_suffix(".png")).screenshot
    except BrowserError:
        return None
