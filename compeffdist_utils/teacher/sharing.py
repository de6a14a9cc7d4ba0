"""Runs that share one response cache ask each request once: claim what you ask, wait for what others ask.

Why: two studies in different run folders with one ``cache_dir`` (or a rerun started while the first
still runs) would otherwise both pay for every prompt neither had cached. A backend claims the keys it
is about to ask in the cache (:meth:`ResponseCache.claim`); keys another live run has claimed are waited
for and read from the cache as that run answers them. A claim ends when its owner has asked (answered or
not), when its owner's process on this machine is gone, or when its lease expires (the owner renews it
with every answer, so only a run that stopped answering loses its claims). A key whose claim ended
without an answer is claimed and asked by the waiting run: it is then asked twice, once by each, which
is what a request the server rejects costs anyway (rejections are not cached).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid

from compeffdist_utils.teacher.cache import CachedAnswer, ResponseCache

log = logging.getLogger(__name__)

POLL_S = 0.25  # how often a waiting run looks for the answers another run is asking for


def new_owner() -> str:
    """A claim owner: this machine, this process and a nonce (two backends in one process differ)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _gone(owner: str) -> bool:
    """An owner whose process on this machine no longer exists (its claims would never be answered)."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine: its lease decides
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def wait_for_others(
    cache: ResponseCache, keys: set[str], owner: str, usable: bool = True
) -> dict[str, CachedAnswer]:
    """The answers to ``keys`` that other runs are asking, read from the cache as they arrive; returns
    when every key is answered or no longer claimed (the caller asks those itself).

    ``usable`` False drops empty answers (a server backend, where "" is never an answer).
    """
    waiting, got = set(keys), {}
    said = False
    while waiting:
        # Claims first, answers second: an owner stores its answer before it releases the claim, so a
        # key unclaimed before this read and not in it was released unanswered.
        holders = cache.claimed_by_others(sorted(waiting), owner)
        dead = sorted({o for o in holders.values() if _gone(o)})
        if dead:
            cache.drop_claims_of(dead)
            holders = {k: o for k, o in holders.items() if o not in dead}
        found = cache.get_many(sorted(waiting))
        got.update({k: a for k, a in found.items() if a.text or usable})
        waiting = (waiting - set(got)) & set(holders)
        if waiting and not said:
            log.warning(
                "%d request(s) are being asked by another run sharing the response cache %s; waiting for "
                "its answers instead of paying for them twice", len(waiting), cache.path,
            )  # fmt: skip
            said = True
        if waiting:
            time.sleep(POLL_S)
    return got
