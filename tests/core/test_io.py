import os
import stat

from compeffdist_utils.core.io import atomic_write_text, write_jsonl


def test_atomic_writes_get_the_umask_mode_like_other_files(tmp_path):
    old = os.umask(0o027)
    try:
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
        atomic = atomic_write_text(tmp_path / "atomic.txt", "x")
        jsonl = write_jsonl(tmp_path / "a.jsonl", [{"a": 1}])
    finally:
        os.umask(old)
    modes = {stat.S_IMODE(p.stat().st_mode) for p in (plain, atomic, jsonl)}
    assert modes == {0o640}
