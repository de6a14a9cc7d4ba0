"""Reading YAML files strictly: a key written twice in one mapping is an error, not a silent override.

Why: PyYAML keeps the last of two equal keys, so a params file with ``seed: 1`` and, further down,
``seed: 2`` runs with 2 and nobody is told; a study's settings must say one thing.
"""

from __future__ import annotations

from typing import Any

import yaml


class DuplicateKeyError(yaml.YAMLError):
    """A mapping that names one key twice; the message gives both lines."""


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key written twice in one mapping."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)  # merge keys (<<) are not duplicates of what they merge into
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise DuplicateKeyError(f"the key {key!r} is written twice (lines {seen[key]} and {line})")
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_yaml(text: str) -> Any:
    """The YAML document in ``text``, refusing duplicated keys (:class:`DuplicateKeyError`)."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
