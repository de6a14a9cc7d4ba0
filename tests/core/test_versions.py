"""The supported transformers/peft/accelerate range: declared once in pyproject, said in one line."""

import tomllib

from compeffdist_utils.cli import main
from compeffdist_utils.core.versions import SUPPORTED, version_line, version_problems
from tests.conftest import ROOT


def test_pyproject_declares_the_same_range_and_its_top_is_the_pin():
    t = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = {k: tuple(v) for k, v in t["tool"]["compeffdist"]["supported"].items()}
    assert declared == SUPPORTED
    pins = {r.split("==")[0].split("[")[0]: r.split("==")[1] for r in t["project"]["dependencies"]}
    assert all(pins[name] == high for name, (_, high) in SUPPORTED.items())


def test_the_line_says_inside_or_names_what_is_not():
    ok = {"transformers": "5.17.0", "peft": "0.21.2", "accelerate": "1.15.0"}
    assert version_problems(ok) == [] and "inside the supported range" in version_line(ok)
    old = ok | {"transformers": "5.10.1"}
    assert version_problems(old) == ["transformers 5.10.1 is older than the kit's floor 5.17.0"]
    line = version_line(old | {"peft": None})
    assert "NOT supported" in line and "peft is not installed" in line and "\n" not in line
    assert version_problems(ok | {"transformers": "5.24.3"}) == []  # a patch release of the pin
    assert "newer than checked" in version_line(ok | {"transformers": "6.0.0"})


def test_validate_prints_the_line_as_a_yaml_comment(capsys):
    assert main(["validate", str(ROOT / "params" / "tiny.yaml")]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("# packages: transformers ") and "supported" in last
