"""The one rule for waiting between retries: exponential backoff, capped, optionally jittered.

Every retry loop of sqlkv (the store's ``transact``, the v2 VFS's engine calls, the network
client's node rounds) sleeps ``backoff(attempt, base, cap)`` after its ``attempt``-th failure.
"""

from __future__ import annotations

import random


def backoff(attempt: int, base_s: float, max_s: float, *, jitter: bool = False) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): ``base_s``
    doubled per attempt, at most ``max_s``; with ``jitter``, uniform in ``[0, that]`` (full
    jitter, so that clients that failed together do not retry together)."""
    ceiling = float(min(max_s, base_s * 2 ** (attempt - 1)))
    return random.uniform(0, ceiling) if jitter else ceiling
