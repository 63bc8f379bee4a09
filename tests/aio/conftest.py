"""An embedded store in the test's temporary directory, and a way to run a coroutine."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return str(tmp_path / "store")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` under a real event loop (each test gets a fresh one)."""
    return asyncio.run(coro)
