"""The pruned-student spec grammar (``base#keep_layers=K[,rule=R]`` or a YAML mapping), read when params load.

Kept apart from :mod:`compeffdist_utils.models.pruning` (which builds the pruned folder) because the params
schema needs it and sits below everything that loads a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RULES = ("spread", "front")


_SEP = "#"


class PruneSpecError(ValueError):
    """A pruned-model spec that cannot be built; the message names the spec and what is allowed."""


@dataclass(frozen=True)
class PrunedSpec:
    """A base model spec with the number of decoder layers to keep and the rule that picks them."""

    base: str
    keep_layers: int
    rule: str = "spread"

    @property
    def spec(self) -> str:
        """The canonical string form (what params store and what fingerprints hash)."""
        opts = f"keep_layers={self.keep_layers}" + ("" if self.rule == "spread" else f",rule={self.rule}")
        return f"{self.base}{_SEP}{opts}"


def _checked(base: Any, keep: Any, rule: Any, spec: str) -> PrunedSpec:
    if not isinstance(base, str) or not base or _SEP in base:
        raise PruneSpecError(f"pruned model {spec!r}: 'base' must be a model spec without {_SEP!r}")
    try:
        k = int(keep)
    except (TypeError, ValueError):
        raise PruneSpecError(
            f"pruned model {spec!r}: keep_layers must be a whole number, got {keep!r}"
        ) from None
    if str(keep).strip() != str(k) or k < 1:
        raise PruneSpecError(f"pruned model {spec!r}: keep_layers must be a whole number >= 1, got {keep!r}")
    if rule not in RULES:
        raise PruneSpecError(f"pruned model {spec!r}: rule must be one of {list(RULES)}, got {rule!r}")
    return PrunedSpec(base, k, rule)


def parse_pruned_spec(spec: str) -> PrunedSpec | None:
    """The :class:`PrunedSpec` of ``base#keep_layers=K[,rule=R]``; ``None`` for a spec without ``#``."""
    if _SEP not in spec:
        return None
    base, _, opts = spec.rpartition(_SEP)
    fields: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in opts.split(","))):
        key, eq, value = part.partition("=")
        if not eq or key.strip() not in ("keep_layers", "rule"):
            raise PruneSpecError(
                f"pruned model {spec!r}: cannot read {part!r}; write base#keep_layers=K[,rule=spread|front]"
            )
        fields[key.strip()] = value.strip()
    if "keep_layers" not in fields:
        raise PruneSpecError(f"pruned model {spec!r}: keep_layers is missing (base#keep_layers=K)")
    return _checked(base, fields["keep_layers"], fields.get("rule", "spread"), spec)


def normalise_spec(value: Any) -> Any:
    """Params accept a pruned model as a mapping {base, keep_layers, rule?}; store its string form.

    Strings are checked (a malformed ``#`` spec fails when params load, not when a stage needs the
    model); anything else is returned unchanged for the field's own validation to judge.
    """
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"base", "keep_layers", "rule"})
        if unknown or "base" not in value or "keep_layers" not in value:
            raise PruneSpecError(
                f"pruned model {value!r}: expected keys base, keep_layers (and optionally rule); "
                f"unknown: {unknown}"
            )
        return _checked(value["base"], value["keep_layers"], value.get("rule", "spread"), str(value)).spec
    if isinstance(value, str):
        parsed = parse_pruned_spec(value)
        return value if parsed is None else parsed.spec
    return value
