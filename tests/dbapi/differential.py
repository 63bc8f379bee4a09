"""The differential harness: one scenario, run against the stdlib ``sqlite3`` (on a file) and
against ``sqlkv.dbapi2`` (on a sqlkv database), records what each call returned or which
exception class it raised, and the transaction state; the two records must be equal.

Only the standard library is imported here, so ``record_stdlib.py`` can run the scenarios
under another Python (3.12 for ``autocommit``) without sqlkv installed.
"""

from __future__ import annotations

import contextlib
import datetime
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

PEP249 = {
    "Warning",
    "Error",
    "InterfaceError",
    "DatabaseError",
    "DataError",
    "OperationalError",
    "IntegrityError",
    "InternalError",
    "ProgrammingError",
    "NotSupportedError",
}
DBAPI_MODULES = ("sqlite3", "sqlkv.dbapi2.exceptions")

Connect = Callable[..., Any]


def kind(exc: BaseException) -> str:
    """The class a program would catch: the PEP 249 one, else the builtin one."""
    for cls in type(exc).__mro__:
        if cls.__name__ in PEP249 and cls.__module__ in DBAPI_MODULES:
            return cls.__name__
        if cls.__module__ == "builtins":
            return cls.__name__
    return type(exc).__name__


def plain(value: Any) -> Any:
    """``value`` as JSON-able data, equal for equal results of either module."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return {"bytes": bytes(value).hex()}
    if isinstance(value, datetime.date | datetime.time):
        return {type(value).__name__: value.isoformat()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    name = type(value).__name__
    if name == "Row":
        return {"row": [plain(v) for v in value], "keys": list(value.keys())}
    if name in ("Cursor", "Connection", "Blob"):
        return f"<{name}>"
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return {"object": name}


class Trace:
    """What one module did in one scenario (``events``), and the scenario's helpers."""

    def __init__(self, db: Any, connect: Connect) -> None:
        self.db = db
        self._connect = connect
        self.events: list[Any] = []
        self.opened: list[Any] = []

    def connect(self, name: str = "main", **kwargs: Any) -> Any:
        conn = self._connect(name, **kwargs)
        self.opened.append(conn)
        return conn

    def __call__(self, label: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``fn``; record its (plain) result or the class of what it raised."""
        try:
            value = fn(*args, **kwargs)
        except Exception as exc:
            self.events.append([label, "raises", kind(exc)])
            return None
        self.events.append([label, plain(value)])
        return value

    def note(self, label: str, value: Any) -> None:
        self.events.append([label, plain(value)])

    def state(self, label: str, conn: Any, cur: Any = None) -> None:
        """The transaction state of ``conn`` and, given one, ``cur``'s result attributes."""
        self(f"{label}: in_transaction", lambda: conn.in_transaction)
        self(f"{label}: total_changes", lambda: conn.total_changes)
        if cur is not None:
            self.note(
                f"{label}: rowcount, lastrowid, description",
                [cur.rowcount, cur.lastrowid, cur.description],
            )

    def in_thread(self, label: str, fn: Callable[[], Any]) -> None:
        """Call ``fn`` on another thread and record as ``__call__`` does."""
        events: list[Any] = []

        def run() -> None:
            saved, self.events = self.events, events
            try:
                self(label, fn)
            finally:
                self.events = saved

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        self.events.extend(events)

    def close_all(self) -> None:
        for conn in reversed(self.opened):
            with contextlib.suppress(Exception):
                conn.close()


Scenario = Callable[[Trace], None]


def record(scenario: Scenario, db: Any, connect: Connect) -> list[Any]:
    trace = Trace(db, connect)
    try:
        scenario(trace)
    finally:
        trace.close_all()
    return trace.events


Compare = Callable[[Scenario], list[Any]]
"""The ``compare`` fixture: runs a scenario on both modules, asserts equal events, returns them."""


def stdlib_connect(directory: Path) -> Callable[..., sqlite3.Connection]:
    """``connect(name)`` for the stdlib side: a plain SQLite file per name in ``directory``."""

    def connect(name: str, **kwargs: Any) -> sqlite3.Connection:
        return sqlite3.connect(directory / f"{name}.db", **kwargs)

    return connect
