"""Removing secrets from text the kit prints or writes (error messages, manifests, reports).

Why: a server may echo the request's ``Authorization`` header in an error body, and such text ends up
in exceptions, the executed notebook, ``manifest.json`` and ``report.html``. Every error text that can
carry server output goes through :func:`redact` first.
"""

from __future__ import annotations

import os
import re

REDACTED = "[redacted]"
# Shapes of bearer tokens and OpenAI-style keys, whatever variable they came from.
_TOKEN_SHAPES = re.compile(r"(?i)\bbearer\s+[^\s\"',;]+|\bsk-[A-Za-z0-9_\-]{6,}")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with each of ``secrets`` and every ``Bearer ...`` / ``sk-...`` token replaced."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return _TOKEN_SHAPES.sub(REDACTED, text)


def env_secrets(*names: str | None) -> tuple[str, ...]:
    """The values of the named environment variables that are set (the keys to redact)."""
    return tuple(v for n in names if n and (v := os.environ.get(n)))
