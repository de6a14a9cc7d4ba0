"""Live progress: what a stage's kernel reports reaches the runner's console, throttled, with heartbeats."""

from __future__ import annotations

import json
import time

from compeffdist_utils.core.progress import PROGRESS_ENV, ProgressTail, format_event, report_progress, tqdm


def test_bars_and_steps_write_events_only_under_the_runner(tmp_path, monkeypatch):
    path = tmp_path / "p.jsonl"
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    report_progress("nothing to write")  # outside `compeffdist run`: no file, no error
    assert not path.exists()
    monkeypatch.setenv(PROGRESS_ENV, str(path))
    with tqdm(total=5, desc="enumerate", unit="req") as bar:
        for _ in range(5):
            bar.set_postfix_str("19 tok/s", refresh=False)
            bar.update(1)
    report_progress("figure top_attributes")
    events = [json.loads(line) for line in path.read_text().splitlines()]
    # throttled to one write a second, but the completed count is always written
    assert events[0]["step"] == "enumerate" and {"n": 5, "total": 5}.items() <= events[-2].items()
    assert "19 tok/s" in events[-2]["note"] and "req/s" in events[-2]["note"]
    assert len(events) <= 4 and events[-1]["step"] == "figure top_attributes"


def wait_for(lines: list[str], text: str, limit_s: float = 20.0) -> None:
    """Until a printed line holds ``text``: the tail's thread runs when the (busy) machine lets it."""
    deadline = time.monotonic() + limit_s
    while not any(text in line for line in lines):
        assert time.monotonic() < deadline, f"nothing with {text!r} printed within {limit_s} s: {lines}"
        time.sleep(0.02)


def test_tail_prints_steps_their_end_and_heartbeats(tmp_path):
    path = tmp_path / "p.jsonl"
    lines: list[str] = []
    with ProgressTail(path, "01_attributes", printer=lines.append, every_s=60, heartbeat_s=0.3, poll_s=0.05):
        wait_for(lines, "running")  # nothing reported yet: a heartbeat says the stage is alive
        with path.open("a") as fh:
            for n in (1, 2, 3, 4, 4):  # the second 4/4 is what a bar writes again when it closes
                fh.write(json.dumps({"step": "enumerate", "n": n, "total": 4, "note": "19 tok/s"}) + "\n")
            fh.write(
                json.dumps({"step": "figure top_attributes", "n": None, "total": None, "note": ""}) + "\n"
            )
            fh.write('{"step": "torn')  # an unfinished line is left for the next poll
        wait_for(lines, "figure top_attributes")
        time.sleep(0.2)  # a few more polls: the torn line must stay unprinted
    assert lines[0].startswith("[01_attributes] · running")
    shown = [line for line in lines if "enumerate" in line and "still running" not in line]
    assert shown[0].startswith("[01_attributes] · enumerate 1/4 · 19 tok/s")
    assert sum("enumerate 4/4" in line for line in shown) == 1  # completed: printed once, not again on close
    assert any("figure top_attributes" in line for line in lines)
    assert not any("torn" in line for line in lines)


def test_format_event_reads_like_the_issue():
    event = {"step": "enumerate", "n": 12, "total": 24, "note": "19 tok/s"}
    assert format_event("01_attributes", event, 35.2) == "[01_attributes] · enumerate 12/24 · 19 tok/s · 35 s"


def test_generation_meter_counts_tokens_inside_a_batch(tmp_path, monkeypatch):
    from compeffdist_utils.core.progress import generation_meter

    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    assert generation_meter("teacher batch 1/1 · token", 128, 8) is None  # outside the runner: no streamer
    path = tmp_path / "p.jsonl"
    monkeypatch.setenv(PROGRESS_ENV, str(path))
    meter = generation_meter("teacher batch 1/1 · token", 128, 8)
    meter.put("prompt ids")  # generate hands the prompt first: no token yet
    assert not path.exists()
    meter._t0 -= 2.0  # as if the first token took two seconds
    meter.put("token 1")
    meter.end()
    (event,) = [json.loads(line) for line in path.read_text().splitlines()]
    assert event["step"] == "teacher batch 1/1 · token" and (event["n"], event["total"]) == (1, 128)
    assert event["note"].startswith("4 tok/s")  # 8 sequences x 1 token in 2 s
