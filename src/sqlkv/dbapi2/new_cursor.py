"""``Connection.execute``: a statement on a new plain cursor.

The stdlib's ``Connection.execute`` makes a plain ``Cursor`` (not through an overridden
``cursor()``) and runs one statement on it. Here that is ``Cursor.execute``'s hot path
inlined for a new cursor; with the C hot paths (``_speedups``, docs/python-dbapi.md §8)
it runs in C, which calls back into ``execute_general`` and ``raise_mapped`` off the
common case.
"""

from __future__ import annotations

from collections.abc import Callable
from threading import get_ident
from typing import TYPE_CHECKING, Any

import apsw

from sqlkv.dbapi2.cursor import _KINDS, Cursor, _new_cursor
from sqlkv.dbapi2.exceptions import binding_error

if TYPE_CHECKING:
    from sqlkv.dbapi2.connection import Connection


def execute_on_new_cursor(connection: Connection, sql: str, parameters: Any = (), /) -> Cursor:
    """``Connection.execute``: a new plain ``Cursor`` (not through an overridden
    ``cursor()``, as in the stdlib) running ``sql``. ``Cursor.execute``'s hot path inlined
    for a new cursor (a frame less, and no state to reset); anything else goes through
    ``Cursor.execute``, which makes the stdlib's checks (thread, then closed)."""
    try:
        kind = _KINDS[sql]
    except (KeyError, TypeError):
        return Cursor(connection)._execute_checked(sql, parameters)
    if connection._fast_thread != get_ident():
        return Cursor(connection)._execute_checked(sql, parameters)
    cursor: Cursor = _new_cursor(Cursor)
    cursor._connection = connection
    cursor.row_factory = connection.row_factory
    conn: apsw.Connection = connection._apsw  # type: ignore[assignment]
    if kind and connection._begins and not conn.in_transaction:
        connection._begin_implicitly()
    cur = cursor._apsw = conn.cursor()
    try:
        cur.execute(sql, parameters)
    except BaseException as exc:
        raise binding_error(exc) from exc
    cursor._sql = sql
    cursor._params = parameters
    if kind == 0:  # READ
        cursor.rowcount = -1
        cursor._ahead = cur.fetchone()  # read ahead: see Cursor.execute
        cursor._rows = None if cursor._ahead is None else cur
    elif kind == 1:  # DML
        cursor._rows = None
        cursor.rowcount = conn.changes()
    else:
        cursor._rows = None
        cursor._started_returning(conn, cur)
    cursor.lastrowid = conn.last_insert_rowid()
    return cursor


def execute_general(connection: Connection, sql: Any, parameters: Any) -> Cursor:
    """``Connection.execute`` off the hot path: every check, in the stdlib's order."""
    return Cursor(connection)._execute_checked(sql, parameters)


def raise_mapped(exc: BaseException, mapper: Callable[[BaseException], BaseException]) -> None:
    """For the C hot paths: ``raise mapper(exc) from exc`` while ``exc`` is handled."""
    raise mapper(exc) from exc
