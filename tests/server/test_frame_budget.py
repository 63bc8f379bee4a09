"""The server-wide frame budget: frames that do not fit wait in arrival order, and a
cancelled waiter gives back nothing it did not get."""

from __future__ import annotations

import asyncio

import pytest

from sqlkv.errors import ConfigError
from sqlkv.server.frames import FrameBudget, read_body
from sqlkv.server.server import ServerConfig


def test_budget_holds_frames_until_released_in_arrival_order() -> None:
    async def scenario() -> list[str]:
        budget = FrameBudget(100)
        order: list[str] = []
        await budget.acquire(80)

        async def take(name: str, n: int) -> None:
            await budget.acquire(n)
            order.append(name)

        first = asyncio.create_task(take("first", 50))
        second = asyncio.create_task(take("second", 10))  # fits, but waits behind first
        await asyncio.sleep(0.01)
        assert order == [] and budget.used == 80
        budget.release(80)
        await asyncio.gather(first, second)
        assert budget.used == 60
        return order

    assert asyncio.run(scenario()) == ["first", "second"]


def test_cancelled_waiter_leaves_budget_intact() -> None:
    async def scenario() -> int:
        budget = FrameBudget(100)
        await budget.acquire(100)
        waiter = asyncio.create_task(budget.acquire(60))
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        budget.release(100)
        await budget.acquire(100)  # the whole budget is there again
        return budget.used

    assert asyncio.run(scenario()) == 100


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
