"""The range of transformers, peft and accelerate the kit runs on, and the one line ``compeffdist validate``
prints about the installed ones.

Why: GPU images and users' environments ship other 5.x versions than the pin (issue 23 met
``TrainingArguments(activation_checkpointing=...)`` raising a TypeError under transformers 5.17). Known
differences inside the range are feature-detected where they are used (e.g.
:func:`compeffdist_utils.student_training.trainer_setup.checkpointing_kwarg`); the range itself is declared
in ``pyproject.toml`` (``[tool.compeffdist.supported]``, kept equal to :data:`SUPPORTED` by a test) and
is what the tests were run on: the pins, and the floors in a scratch environment (README, *Versions*).
"""

from __future__ import annotations

from importlib import metadata

# package -> (oldest checked, newest checked = the pin)
SUPPORTED: dict[str, tuple[str, str]] = {
    "transformers": ("5.17.0", "5.24.0"),
    "peft": ("0.21.0", "0.21.2"),
    "accelerate": ("1.15.0", "1.15.0"),
}


def _key(version: str) -> tuple[int, ...]:
    """Numeric release parts of a version (``5.24.0.dev0`` -> (5, 24, 0)); enough to order the range."""
    parts = []
    for piece in version.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit()) if piece[:1].isdigit() else ""
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def version_problems(installed: dict[str, str | None] | None = None) -> list[str]:
    """One phrase per package outside its supported range (or missing); empty when all are inside."""
    found = installed if installed is not None else {name: _installed(name) for name in SUPPORTED}
    problems = []
    for name, (low, high) in SUPPORTED.items():
        got = found.get(name)
        if got is None:
            problems.append(f"{name} is not installed (need {low}-{high})")
        elif _key(got) < _key(low):
            problems.append(f"{name} {got} is older than the kit's floor {low}")
        elif _key(got)[:2] > _key(high)[:2]:
            problems.append(f"{name} {got} is newer than checked ({high})")
    return problems


def version_line(installed: dict[str, str | None] | None = None) -> str:
    """The one line ``validate`` prints: the installed versions and whether they are in the kit's range."""
    found = installed if installed is not None else {name: _installed(name) for name in SUPPORTED}
    have = ", ".join(f"{n} {found.get(n) or '-'}" for n in SUPPORTED)
    problems = version_problems(found)
    ranges = ", ".join(f"{n} {lo}-{hi}" if lo != hi else f"{n} {lo}" for n, (lo, hi) in SUPPORTED.items())
    if problems:
        return f"packages: {have}: NOT supported: {'; '.join(problems)} (supported: {ranges})"
    return f"packages: {have}: inside the supported range ({ranges})"


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
