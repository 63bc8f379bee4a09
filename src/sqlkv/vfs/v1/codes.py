"""SQLite errors raised by the v1 VFS: apsw maps each class back to its SQLite code."""

from __future__ import annotations

import apsw

from sqlkv.vfs.sqlite_errors import sqlite_error

__all__ = ["corrupt", "sqlite_error"]


def corrupt(message: str) -> apsw.Error:
    return sqlite_error(apsw.SQLITE_CORRUPT, message)
