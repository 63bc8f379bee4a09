"""Running a coroutine under a real event loop, for the sqlkv.aio tests."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` under a fresh event loop (``asyncio.run``)."""
    return asyncio.run(coro)
