"""The PostgreSQL store's errors: the one table translating the server's SQLSTATEs into
ours (``_ERRORS``), and telling a lost connection from an error the server answered.

The table is keyed by SQLSTATE (or its two-character class) rather than by exception
class, so this driver does not use ``translate.ErrorTable``. A lost connection is told
apart by the connection's state, not by the table: during a read it becomes
``StoreUnavailable``, with a commit in flight ``CommitUnknown`` (``postgres.py``).
"""

from __future__ import annotations

from typing import Any, NoReturn

import psycopg

from sqlkv.errors import (
    ConfigError,
    ConflictError,
    LimitExceeded,
    SqlkvError,
    StoreError,
    StoreUnavailable,
)

Connection = psycopg.Connection[Any]

MAX_INDEXED_KEY_BYTES = 2692
"""The longest key PostgreSQL's B-tree accepts when the key does not compress (measured:
an entry is the key plus 12 bytes, at most 2704)."""

# Backend errors by SQLSTATE, or by its two-character class: our error and what to say.
# Connection loss is told apart by the connection's state, not here (see translate).
_ERRORS: dict[str, tuple[type[SqlkvError], str]] = {
    "40001": (
        ConflictError,
        "another transaction changed data this one read (serialization failure); run it again",
    ),
    "40P01": (ConflictError, "a deadlock with a concurrent transaction; run it again"),
    "55P03": (
        ConflictError,
        "a concurrent commit is writing a row this transaction read; run it again",
    ),
    # A key over the B-tree's entry size (or, with no key that long, another size limit).
    "54000": (LimitExceeded, "a key is too long for PostgreSQL's primary-key index"),
    "53300": (
        StoreUnavailable,
        "the server has no free connection slot; use fewer connections or raise the "
        "server's max_connections",
    ),
    "57P01": (StoreUnavailable, "the server ended the connection (administrator command)"),
    "57P02": (StoreUnavailable, "the server is restarting after a crash"),
    "57P03": (StoreUnavailable, "the server is starting up or shutting down"),
    "08": (StoreUnavailable, "the connection to the server failed"),
    "42P01": (StoreError, "the table does not exist: was it dropped while the store was open?"),
    "42501": (
        ConfigError,
        "the user lacks a privilege on the table or its schema; grant it or use another user",
    ),
    "42": (
        StoreError,
        "the server refused the statement: does the table have the layout "
        "(key bytea PRIMARY KEY, value bytea NOT NULL)?",
    ),
    "28": (ConfigError, "the server refused the user; check the URL's user and password"),
    "3D": (ConfigError, "the database in the URL does not exist on the server"),
}


def translate(
    exc: psycopg.Error, conn: Connection, where: str, doing: str, *, longest_key: int = 0
) -> NoReturn:
    """Raise our error for a backend error (the one table is ``_ERRORS``)."""
    state = sqlstate(exc) or ""
    if connection_failed(exc, conn) and not state.startswith(("08", "57")):
        state = "08000"
    error, what = _ERRORS.get(state) or _ERRORS.get(state[:2]) or (StoreError, "")
    if error is LimitExceeded:
        if longest_key > MAX_INDEXED_KEY_BYTES:
            raise LimitExceeded("key", longest_key, MAX_INDEXED_KEY_BYTES) from exc
        error, what = StoreError, "a value or request is over one of the server's size limits"
    detail = f"{what} " if what else ""
    raise error(
        f"PostgreSQL at {where}, {doing}: {detail}[SQLSTATE {state or 'none'}: {first_line(exc)}]"
    ) from exc


def sqlstate(exc: BaseException | None) -> str | None:
    return getattr(exc, "sqlstate", None)


def is_lost(conn: Connection) -> bool:
    return bool(conn.closed or conn.broken)


def connection_failed(exc: psycopg.Error, conn: Connection) -> bool:
    """True unless the server answered with an error on a connection that still works.

    A dead connection does not always show as ``broken``: a pipeline cut short fails
    with "cannot exit pipeline mode while busy", an OperationalError with no SQLSTATE.
    """
    state = sqlstate(exc) or ""
    if is_lost(conn) or state.startswith(("08", "57")):
        return True
    return isinstance(exc, psycopg.OperationalError) and not state


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
