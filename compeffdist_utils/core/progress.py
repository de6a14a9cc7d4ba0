"""Live progress from inside a stage's kernel to the console of ``compeffdist run``.

papermill runs a notebook in a separate kernel process, so the progress bars a stage draws there never
reach the terminal. The runner therefore names a file in the environment (``COMPEFFDIST_PROGRESS``)
before it starts the kernel; inside the kernel :class:`tqdm` (a drop-in for ``tqdm.auto.tqdm``) and
:func:`report_progress` append one JSON line per update to it, and :class:`ProgressTail` in the runner
reads the file and prints what the stage is doing. A file rather than the kernel's output stream: it
survives any front-end (papermill, nbclient, a kernel started by hand) and a crashing cell, and
without the variable (JupyterLab) nothing is written.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm as _auto_tqdm

PROGRESS_ENV = "COMPEFFDIST_PROGRESS"
_MIN_INTERVAL_S = 1.0  # a bar writes at most once a second (and always when it completes)


def report_progress(step: str, n: int | None = None, total: int | None = None, note: str = "") -> None:
    """Append one progress event to the runner's file; does nothing outside ``compeffdist run``."""
    path = os.environ.get(PROGRESS_ENV)
    if not path:
        return
    event = {"t": round(time.time(), 2), "step": step, "n": n, "total": total, "note": note}
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(event) + "\n")


def format_rate(per_second: float) -> str:
    """Two significant digits for slow rates (a CPU teacher makes ~0.3 tok/s under load), none for fast."""
    return f"{per_second:.0f}" if per_second >= 10 else f"{per_second:.2g}"


class tqdm(_auto_tqdm):  # noqa: N801 - a drop-in for tqdm.auto.tqdm keeps its name
    """``tqdm.auto.tqdm`` that also reports its count, rate and postfix to the runner's file."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._last_report = 0.0
        super().__init__(*args, **kwargs)
        if not self.disable:
            self._report(force=True)  # the step is named as soon as it starts, not after its first item

    def _report(self, force: bool = False) -> None:
        now = time.time()
        if not force and now - self._last_report < _MIN_INTERVAL_S:
            return
        self._last_report = now
        d = self.format_dict
        rate = d.get("rate") or (d["n"] / d["elapsed"] if d.get("elapsed") else None)
        parts = [f"{format_rate(rate)} {d.get('unit', 'it')}/s"] if rate else []
        if d.get("postfix"):
            parts.append(str(d["postfix"]))
        report_progress(str(d.get("prefix") or "progress"), int(d["n"]), d.get("total"), " · ".join(parts))

    def update(self, n: float | None = 1) -> bool | None:
        out = super().update(n)
        self._report(force=self.total is not None and self.n >= self.total)
        return out

    def close(self) -> None:
        if not getattr(self, "disable", True) and getattr(self, "_last_report", None) is not None:
            self._report(force=True)
            self._last_report = None  # type: ignore[assignment]  # report a closed bar once
        super().close()


class GenerationMeter:
    """A transformers streamer that reports how far ``generate`` is inside one batch.

    A batch of long answers can take minutes on a CPU, and a bar that counts finished requests stands
    still meanwhile; this counts generated positions (``generate`` calls :meth:`put` once with the
    prompt, then once per new token) and reports them, throttled like :class:`tqdm`.
    """

    def __init__(self, step: str, max_new_tokens: int, batch_size: int):
        self.step, self.max_new, self.batch = step, max_new_tokens, batch_size
        self._calls, self._t0, self._last = 0, time.time(), 0.0

    def put(self, value: Any) -> None:
        self._calls += 1
        done = self._calls - 1  # the first call carries the prompt
        now = time.time()
        if done and now - self._last >= _MIN_INTERVAL_S:
            self._last = now
            rate = done * self.batch / max(now - self._t0, 1e-6)
            report_progress(
                self.step, done, self.max_new, f"{format_rate(rate)} tok/s (batch of {self.batch})"
            )

    def end(self) -> None:
        """Called by ``generate`` when the batch is done; the finished request count follows."""


def generation_meter(step: str, max_new_tokens: int, batch_size: int) -> GenerationMeter | None:
    """A :class:`GenerationMeter` under ``compeffdist run``, else None (``generate`` runs as before)."""
    return GenerationMeter(step, max_new_tokens, batch_size) if os.environ.get(PROGRESS_ENV) else None


def format_event(stage: str, event: dict[str, Any], elapsed: float) -> str:
    """One console line, e.g. ``[01_attributes] · enumerate 12/24 · 19 tok/s · 35 s``."""
    count = ""
    if event.get("n") is not None:
        count = f" {event['n']}/{event['total']}" if event.get("total") else f" {event['n']}"
    note = f" · {event['note']}" if event.get("note") else ""
    return f"[{stage}] · {event['step']}{count}{note} · {elapsed:.0f} s"


class ProgressTail:
    """Follows a stage's progress file in a thread and prints it: a new step at once, updates of a step
    at most every ``every_s`` seconds, and a heartbeat when nothing was printed for ``heartbeat_s``.
    """

    def __init__(
        self,
        path: Path,
        stage: str,
        printer: Callable[[str], None] = print,
        every_s: float = 2.0,
        heartbeat_s: float = 10.0,
        poll_s: float = 0.5,
    ):
        self.path, self.stage, self.printer = path, stage, printer
        self.every_s, self.heartbeat_s, self.poll_s = every_s, heartbeat_s, poll_s
        self._offset = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name=f"progress-{stage}")
        self._t0 = time.time()
        self._last_print = self._t0
        self._last_event: dict[str, Any] | None = None
        self._printed_event: dict[str, Any] | None = None

    def __enter__(self) -> ProgressTail:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._poll(final=True)

    def _read_new(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, encoding="utf-8") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except FileNotFoundError:
            return []
        complete = chunk[: chunk.rfind("\n") + 1]  # a line still being written waits for the next poll
        self._offset += len(complete.encode("utf-8"))
        events = []
        for line in complete.splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn line is not worth stopping a run for
        return events

    def _emit(self, event: dict[str, Any]) -> None:
        same = ("step", "n", "total", "note")
        if self._printed_event is not None and all(self._printed_event.get(k) == event.get(k) for k in same):
            self._printed_event = event  # a bar's close repeats its last update: print it once
            return
        self.printer(format_event(self.stage, event, time.time() - self._t0))
        self._last_print = time.time()
        self._printed_event = event

    def _poll(self, final: bool = False) -> None:
        now = time.time()
        for event in self._read_new():
            prev, self._last_event = self._last_event, event
            new_step = prev is None or prev.get("step") != event.get("step")
            done = event.get("total") is not None and event.get("n") == event.get("total")
            if new_step and prev is not None and prev is not self._printed_event:
                self._emit(prev)  # the end of the previous step, which may not have been shown
            if new_step or done or now - self._last_print >= self.every_s:
                self._emit(event)
        if final:
            if self._last_event is not None and self._last_event is not self._printed_event:
                self._emit(self._last_event)
        elif now - self._last_print >= self.heartbeat_s:
            last = self._last_event
            what = format_event(self.stage, last, now - self._t0) if last else f"[{self.stage}]"
            self.printer(f"{what} · still running" if last else f"{what} · running · {now - self._t0:.0f} s")
            self._last_print = now

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            self._poll()
