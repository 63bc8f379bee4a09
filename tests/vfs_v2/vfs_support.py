"""Helpers of the v2 client tests: the opener type and small query helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import apsw

from sqlkv.vfs.v2 import Connection

Opener = Callable[..., Connection]


def rows(conn: apsw.Connection, sql: str, bindings: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(sql, bindings)]


def integrity(conn: apsw.Connection) -> str:
    return str(conn.execute("PRAGMA integrity_check").fetchall()[0][0])
