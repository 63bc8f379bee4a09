"""The server-wide frame budget: frames that do not fit wait in arrival order, and a
cancelled waiter gives back nothing it did not get."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from sqlkv.errors import ConfigError
from sqlkv.server.config import ServerConfig
from sqlkv.server.frames import FrameBudget, read_body


def test_budget_holds_frames_until_released_in_arrival_order() -> None:
    budget = FrameBudget(100)
    order: list[str] = []
    assert budget.acquire(80)

    def take(name: str, n: int) -> None:
        assert budget.acquire(n, timeout=10)
        order.append(name)

    first = threading.Thread(target=take, args=("first", 50))
    first.start()
    time.sleep(0.05)  # first is queued before second arrives
    second = threading.Thread(target=take, args=("second", 10))  # fits, but waits behind first
    second.start()
    time.sleep(0.05)
    assert order == [] and budget.used == 80
    budget.release(80)
    first.join(10)
    second.join(10)
    assert order == ["first", "second"]
    assert budget.used == 60


def test_a_waiter_that_times_out_leaves_budget_intact() -> None:
    budget = FrameBudget(100)
    assert budget.acquire(100)
    assert not budget.acquire(60, timeout=0.05)
    assert budget.used == 100
    budget.release(100)
    assert budget.acquire(100, timeout=0)  # the whole budget is there again
    assert budget.used == 100


def test_read_body_reads_in_pieces_and_reports_a_short_frame() -> None:
    async def scenario() -> None:
        reader = asyncio.StreamReader(limit=16)
        reader.feed_data(b"x" * 100)
        assert await read_body(reader, 60) == bytearray(b"x" * 60)
        reader.feed_eof()
        with pytest.raises(asyncio.IncompleteReadError):
            await read_body(reader, 60)

    asyncio.run(scenario())


def test_config_refuses_a_budget_smaller_than_a_frame() -> None:
    with pytest.raises(ConfigError, match="frame_budget_bytes"):
        ServerConfig(frame_budget_bytes=4096, max_frame=8192).validate()
    with pytest.raises(ConfigError, match="preauth_max_frame"):
        ServerConfig(preauth_max_frame=10).validate()
