"""Fixtures of the server tests: ``servers`` starts real server processes and always kills
them; ``store_dir`` is a fresh embedded store directory several servers may share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_support import ServerFactory, ServerProc, start_server


@pytest.fixture
def store_dir(tmp_path: Path) -> str:
    return str(tmp_path / "store")


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[ServerFactory]:
    """``servers(store_url, token=..., tokens_file=..., extra=(...), name=...)`` starts one."""
    started: list[ServerProc] = []

    def start(store: str, **options: Any) -> ServerProc:
        server = start_server(tmp_path, store, **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()
