"""``sqlkv.dbapi2.Cursor``: the stdlib ``sqlite3.Cursor`` over one apsw cursor.

Checks come in the stdlib's order (closed cursor, wrong thread, closed connection), then
the statement is checked (one statement only; ``executemany`` only for statements that
write), the legacy transaction mode opens its transaction before DML, and apsw runs it.
``rowcount`` counts ``changes()`` of DML statements (summed by ``executemany``);
``lastrowid`` is ``last_insert_rowid()`` after each ``execute``; ``description`` is read
from the statement when it is asked for (re-prepared with the same bindings if the
statement has finished), so a query that is never asked pays nothing for it.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from threading import get_ident
from typing import TYPE_CHECKING, Any

import apsw

from sqlkv.dbapi2 import columns, many, statement
from sqlkv.dbapi2.columns import PARSE_COLNAMES
from sqlkv.dbapi2.exceptions import ProgrammingError, binding_error, translate
from sqlkv.dbapi2.types import FLAGS, Converter, Row, adapt_parameters, convert_row

if TYPE_CHECKING:
    from sqlkv.dbapi2.connection import Connection

_UNKNOWN: Any = object()
_END: Any = object()
_KINDS = statement.kinds
_STDLIB_ROW: Any = sqlite3.Row


# sqlkv.dbapi2.connection.Connection, set when that module is imported (it imports this one)
connection_class: type = object


# what every execute writes is in slots (no instance dict to make for a new cursor);
# every way of making a cursor sets them all (__init__, new_cursor.execute_on_new_cursor). With the
# C hot paths (_speedups, docs/python-dbapi.md §8) they are the C base type's fields
_SLOTS = (
    "_ahead",  # the row the next fetch returns (read one step ahead); set with _rows
    "_apsw",
    "_connection",
    "_params",
    "_rows",  # the statement, while it has rows left
    "_sql",  # the last execute's SQL; "" after anything else ran, None before
    "lastrowid",
    "row_factory",
    "rowcount",
)
_speedups: Any = None
if not os.environ.get("SQLKV_DBAPI_PURE_PYTHON"):
    try:
        from sqlkv.dbapi2 import _speedups  # type: ignore[attr-defined,no-redef]
    except ImportError:  # not built (no compiler): the same behaviour in Python
        _speedups = None
_Base: Any = object if _speedups is None else _speedups.CursorBase


class Cursor(_Base):  # type: ignore[misc]
    """A cursor of a ``sqlkv.dbapi2.Connection`` (see the module docstring)."""

    __slots__ = ("__dict__", *(_SLOTS if _speedups is None else ()))

    # the rest of a new cursor's state: class attributes, assigned by instances as needed
    _closed = False
    _description: Any = _UNKNOWN  # computed when asked
    _converters: list[Converter | None] | None = None
    _dml_pending = False
    arraysize = 1

    def __init__(self, connection: Connection, /) -> None:
        if type(connection) is not connection_class and not isinstance(
            connection, connection_class
        ):
            raise TypeError(
                f"Cursor() argument 1 must be sqlkv.dbapi2.Connection, "
                f"not {type(connection).__name__}"
            )
        self._connection = connection
        self.row_factory: Callable[[Cursor, tuple[Any, ...]], Any] | None = connection.row_factory
        self._apsw: apsw.Cursor | None = None
        self._rows: apsw.Cursor | None = None
        self._ahead: Any = None
        self._sql: str | None = None
        self._params: Any = ()
        self.rowcount = -1
        self.lastrowid: int | None = None

    # ------------------------------------------------------------------ checks

    def _check(self) -> apsw.Connection:
        if self._closed:
            raise ProgrammingError("Cannot operate on a closed cursor.")
        return self._connection._check()

    @property
    def connection(self) -> Connection:
        return self._connection

    def _cursor(self, conn: apsw.Connection) -> apsw.Cursor:
        cur = self._apsw
        if cur is None:
            cur = self._apsw = conn.cursor()
        return cur

    # ------------------------------------------------------------------ execute

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor:
        # the hot path: a statement seen before, on the thread of a connection that checks
        # threads (Connection._fast_thread folds the thread and closed checks into one
        # comparison), and only the state that differs from a new cursor's is written;
        # anything else goes through _execute_checked, with the stdlib's checks in order
        connection = self._connection
        try:
            kind = _KINDS[sql]
        except (KeyError, TypeError):
            return self._execute_checked(sql, parameters)
        if self._closed or connection._fast_thread != get_ident():
            return self._execute_checked(sql, parameters)
        conn: apsw.Connection = connection._apsw  # type: ignore[assignment]
        if kind and connection._begins and not conn.in_transaction:
            connection._begin_implicitly()
        cur = self._apsw
        if cur is None:
            cur = self._apsw = conn.cursor()
        if self._sql is not None:  # a cursor used before: back to a new cursor's state
            self._rows = None
            self._description = _UNKNOWN
            self._dml_pending = False
            self._converters = None
            self.rowcount = -1
        try:
            cur.execute(sql, parameters)
        except BaseException as exc:
            self._sql = ""
            self._description = None
            raise binding_error(exc) from exc
        self._sql = sql
        if kind == 0:  # READ
            self._params = parameters
            # one row read ahead, as the stdlib steps once more after each row it returns:
            # apsw has stepped once in execute, so this reads the first row without a step
            row = cur.fetchone()
            if row is not None:
                self._rows = cur
                self._ahead = row
        elif kind == 1:  # DML: no description (the property knows it from the SQL)
            self.rowcount = conn.changes()
        else:
            self._params = parameters
            self._started_returning(conn, cur)
        self.lastrowid = conn.last_insert_rowid()
        return self

    def _execute_checked(self, sql: str, parameters: Any) -> Cursor:
        conn = self._check()
        info = self._prepare(sql)
        params = adapt_parameters(parameters) if FLAGS.native_adapted else parameters
        if not self._connection._check_same_thread:  # threads take turns on the connection
            with self._connection._lock:
                return self._run(conn, info, sql, params)
        return self._run(conn, info, sql, params)

    def _run(self, conn: apsw.Connection, info: statement.Info, sql: str, params: Any) -> Cursor:
        connection = self._connection
        if info.is_dml and connection._begins and not conn.in_transaction:
            connection._begin_implicitly()
        cur = self._apsw
        if cur is None:
            cur = self._apsw = conn.cursor()
        if self._sql is not None:  # a cursor used before: back to a new cursor's state
            self._reset()
        try:
            cur.execute(sql, params)
        except BaseException as exc:
            self._sql = ""
            self._description = None
            raise binding_error(exc) from exc
        self._sql = sql
        self._params = params
        if info.is_dml:
            if info.returning:
                self._started_returning(conn, cur)
            else:
                self._description = None
                self.rowcount = conn.changes()
        else:
            row = cur.fetchone()
            if row is not None:
                self._rows = cur
                self._ahead = row
        self.lastrowid = conn.last_insert_rowid()
        return self

    def _reset(self) -> None:
        self._rows = None
        self._description = _UNKNOWN
        self._dml_pending = False
        self._converters = None
        self.rowcount = -1

    def _started_returning(self, conn: apsw.Connection, cur: apsw.Cursor) -> None:
        """DML with RETURNING: rows, and ``rowcount`` once they are all read (the stdlib)."""
        self.rowcount = 0
        row = cur.fetchone()
        if row is None:
            self.rowcount = conn.changes()
        else:
            self._rows = cur
            self._ahead = row
            self._dml_pending = True

    def _finish_returning(self) -> None:
        """The last row of DML with RETURNING was read: ``rowcount`` is known now."""
        self._dml_pending = False
        self.rowcount = self._connection._check().changes()

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> Cursor:
        conn = self._check()
        info = self._prepare(sql)
        with self._connection._lock:
            return many.run(self, conn, info, sql, seq_of_parameters)

    def executescript(self, sql_script: str, /) -> Cursor:
        conn = self._check()
        if not isinstance(sql_script, str):
            raise TypeError(
                f"executescript() argument must be str, not {type(sql_script).__name__}"
            )
        with self._connection._lock:
            self._connection._commit_before_script()
            cur = self._cursor(conn)
            self._sql = ""
            self._rows = None
            self._ahead = None
            self._description = None
            try:
                for _row in cur.execute(sql_script):
                    pass
            except BaseException as exc:
                raise binding_error(exc) from exc
        return self

    def _prepare(self, sql: Any) -> statement.Info:
        if not isinstance(sql, str):
            raise TypeError(f"execute() argument 1 must be str, not {type(sql).__name__}")
        info = statement.info(sql)
        if not info.single:
            raise ProgrammingError("You can only execute one statement at a time.")
        self._converters = None
        return info

    # ------------------------------------------------------------------ results

    @property
    def description(self) -> tuple[tuple[Any, ...], ...] | None:
        if self._description is _UNKNOWN:
            sql = self._sql
            if not sql:  # nothing executed yet, or not a single statement
                return None
            info = statement.info(sql)
            if info.is_dml and not info.returning:
                return None
            self._description = self._read_description()
        result: tuple[tuple[Any, ...], ...] | None = self._description
        return result

    def _columns(self) -> tuple[tuple[str, str | None], ...]:
        """(name, declared type) of each result column; () for a statement without rows."""
        cur = self._rows
        if cur is not None:
            try:
                return tuple(cur.get_description())
            except apsw.ExecutionCompleteError:
                pass
        if not self._sql:
            return ()
        return columns.probe(self._connection, self._sql, self._params)

    def _read_description(self) -> tuple[tuple[Any, ...], ...] | None:
        found = self._columns()
        if not found:
            return None
        strip = bool(self._connection._detect_types & PARSE_COLNAMES)
        return tuple(
            (columns.strip_colname(name) if strip else name, None, None, None, None, None, None)
            for name, _decl in found
        )

    def _row_converters(self) -> list[Converter | None]:
        found = self._converters
        if found is None:
            found = self._converters = columns.converters_for(
                self._columns(), self._connection._detect_types
            )
        return found

    def _shape(self, row: tuple[Any, ...]) -> Any:
        conn = self._connection
        text = conn.text_factory
        if conn._detect_types or text is not str:
            row = convert_row(
                row, self._row_converters() if conn._detect_types else [None] * len(row), text
            )
        factory = self.row_factory
        if factory is not None:
            if factory is _STDLIB_ROW:  # the stdlib's class, set by code that imports sqlite3
                factory = Row
            return factory(self, row)
        return row

    def fetchone(self) -> Any:
        # the row to return now, after reading the next one: the stdlib steps the statement
        # right after building a row, so an error of the next step is raised by this fetch
        # (the row is lost) and the end is known with the last row (``rowcount`` of a DML
        # statement with RETURNING is set then). __next__ and fetchall do the same.
        # The checks: as in execute; a cursor with rows left is not closed
        cur = self._rows
        connection = self._connection
        if connection._fast_thread != get_ident():
            return self._fetch_checked()
        if cur is None:
            if self._closed:
                raise ProgrammingError("Cannot operate on a closed cursor.")
            return None
        row = self._ahead
        try:
            ahead = cur.fetchone()
        except BaseException as exc:
            self._rows = None
            raise translate(exc) from exc
        if ahead is None:
            self._rows = None  # (the row stays in _ahead: it is being returned anyway)
            if self._dml_pending:
                self._dml_pending = False
                self.rowcount = connection._check().changes()
        else:
            self._ahead = ahead
        if self.row_factory is None and connection._plain_text:
            return row
        return self._shape(row)

    def _fetch_checked(self, end: Any = None) -> Any:
        """fetchone() with the stdlib's checks in order, and the connection's lock when it
        is shared between threads; ``end`` when there are no rows left."""
        if self._closed:
            raise ProgrammingError("Cannot operate on a closed cursor.")
        connection = self._connection
        connection._check()
        cur = self._rows
        if cur is None:
            return end
        row = self._ahead
        try:
            with connection._lock:
                ahead = cur.fetchone()
        except BaseException as exc:
            self._rows = None
            raise translate(exc) from exc
        if ahead is None:
            self._rows = None
            if self._dml_pending:
                self._dml_pending = False
                self.rowcount = connection._check().changes()
        else:
            self._ahead = ahead
        if self.row_factory is None and connection._plain_text:
            return row
        return self._shape(row)

    def fetchmany(self, size: int | None = None) -> list[Any]:
        """Up to ``size`` rows (default ``arraysize``); as in the stdlib, a size of 0 or less
        fetches every remaining row."""
        count = self.arraysize if size is None else size
        out: list[Any] = []
        while True:
            row = self.fetchone()
            if row is None:
                return out
            out.append(row)
            if len(out) == count:
                return out

    def fetchall(self) -> list[Any]:
        if self._closed:
            raise ProgrammingError("Cannot operate on a closed cursor.")
        connection = self._connection
        if connection._apsw is None or (
            connection._check_same_thread and get_ident() != connection._thread
        ):
            connection._check()  # raises
        cur = self._rows
        if cur is None:
            return []
        # the rest in one call: an error on the way loses every row, as in the stdlib
        rows = [self._ahead]
        self._rows = None
        self._ahead = None
        try:
            if connection._check_same_thread:
                rows += cur.fetchall()
            else:
                with connection._lock:
                    rows += cur.fetchall()
        except BaseException as exc:
            self._dml_pending = False
            raise translate(exc) from exc
        if self._dml_pending:
            self._dml_pending = False
            self.rowcount = connection._check().changes()
        if self.row_factory is None and connection._plain_text:
            return rows
        return [self._shape(row) for row in rows]

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        # fetchone() inlined: iteration is how most code reads rows
        cur = self._rows
        connection = self._connection
        if connection._fast_thread != get_ident():
            row = self._fetch_checked(_END)
            if row is _END:
                raise StopIteration
            return row
        if cur is None:
            if self._closed:
                raise ProgrammingError("Cannot operate on a closed cursor.")
            raise StopIteration
        row = self._ahead
        try:
            ahead = cur.fetchone()
        except BaseException as exc:
            self._rows = None
            raise translate(exc) from exc
        if ahead is None:
            self._rows = None
            if self._dml_pending:
                self._dml_pending = False
                self.rowcount = connection._check().changes()
        else:
            self._ahead = ahead
        if self.row_factory is None and connection._plain_text:
            return row
        return self._shape(row)

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        self._connection._check()
        if self._apsw is not None:
            self._apsw.close()
            self._apsw = None
        self._rows = None
        self._closed = True

    def setinputsizes(self, sizes: Any, /) -> None:
        """PEP 249; does nothing, as in the stdlib."""

    def setoutputsize(self, size: Any, column: Any = None, /) -> None:
        """PEP 249; does nothing, as in the stdlib."""


_new_cursor = _Base.__new__  # a cursor without __init__ (new_cursor.py sets every slot)


if _speedups is not None:
    # C iteration and fetchone (cursor.py's code above is what they do), and
    # Connection.execute in C (installed on the class by connection.py)
    del Cursor.fetchone, Cursor.__iter__, Cursor.__next__
    # and C fields (False in a new cursor) instead of these class defaults
    del Cursor._closed, Cursor._dml_pending
