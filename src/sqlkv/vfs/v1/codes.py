"""SQLite errors raised by the v1 VFS: apsw maps each class back to its SQLite code."""

from __future__ import annotations

import apsw


def sqlite_error(code: int, message: str) -> apsw.Error:
    """The apsw exception for SQLite (extended) ``code``, carrying ``message``."""
    exc = apsw.exception_for(code)
    assert isinstance(exc, apsw.Error)
    exc.args = (message,)
    return exc


def corrupt(message: str) -> apsw.Error:
    return sqlite_error(apsw.SQLITE_CORRUPT, message)
