"""The README's FastAPI-style example runs as written: its code block is extracted from
README.md, executed, and driven like a web framework would (startup, concurrent requests,
shutdown)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from aio_support import run

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- example: async-service -->"


def _example_source() -> str:
    text = README.read_text()
    assert MARKER in text, "README lost its async-service example"
    match = re.search(r"```python\n(.*?)```", text[text.index(MARKER) :], re.S)
    assert match is not None
    return match.group(1)


def test_readme_async_service_handles_concurrent_requests(store_url: str) -> None:
    namespace: dict[str, Any] = {}
    exec(compile(_example_source(), "README.md:async-service", "exec"), namespace)
    service = namespace["OrdersService"]("shop", store=store_url)

    async def main() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        await service.startup()
        created = await asyncio.gather(
            *(service.create_order({"item": f"item{i}", "qty": i}) for i in range(20))
        )
        listed = await service.list_orders()
        await service.shutdown()
        return created, listed

    created, listed = run(main())
    assert sorted(o["id"] for o in created) == list(range(1, 21))
    assert listed == sorted(created, key=lambda o: o["id"])

    async def reopen() -> list[dict[str, Any]]:  # the orders were committed
        again = namespace["OrdersService"]("shop", store=store_url)
        await again.startup()
        try:
            return list(await again.list_orders())
        finally:
            await again.shutdown()

    assert len(run(reopen())) == 20
