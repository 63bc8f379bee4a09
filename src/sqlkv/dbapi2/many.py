"""``executemany`` of ``sqlkv.dbapi2``: the rows run through one apsw cursor, only DML
(``ProgrammingError`` for a statement that reads), and ``rowcount`` as the stdlib counts
it: the sum of each row's own ``changes()``.

That sum is the growth of the connection's ``total_changes()`` when nothing but the
statement changes rows (``statement.changes_are_direct``: no triggers, foreign key actions,
attached databases or user callbacks), and then no Python runs per row. Otherwise, and for
fewer than ``_FEW_ROWS`` rows (where reading the schema costs more than it saves), a tracer
of the cursor adds ``changes()`` before each next row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import apsw

from sqlkv.dbapi2 import statement
from sqlkv.dbapi2.exceptions import ProgrammingError, binding_error
from sqlkv.dbapi2.types import FLAGS, adapt_parameters

if TYPE_CHECKING:
    from sqlkv.dbapi2.cursor import Cursor

_BASE_EXEC_TRACE: Any = vars(apsw.Connection)["exec_trace"]


def run(
    cursor: Cursor, conn: apsw.Connection, info: statement.Info, sql: str, seq_of_parameters: Any
) -> Cursor:
    """``cursor.executemany(sql, seq_of_parameters)``, its checks made (thread, closed, one
    statement), under the connection's lock."""
    connection = cursor._connection
    if info.is_dml:
        connection._begin_implicitly()
    if FLAGS.native_adapted:
        seq_of_parameters = map(adapt_parameters, seq_of_parameters)
    cursor._sql = ""
    cursor._rows = None
    cursor._ahead = None
    cursor._description = None
    cursor._dml_pending = False
    cursor.rowcount = -1
    # a cursor of its own: apsw never goes back to the connection's tracer (sqlkv's
    # fencing guard) on a cursor that once had a tracer of its own
    cur = conn.cursor()
    user_traced = conn.exec_trace is not None
    if (
        info.is_dml
        and not user_traced
        and _long(seq_of_parameters)
        and statement.changes_are_direct(connection, conn)
    ):
        # rowcount (the sum of changes() per row, as the stdlib counts) is the growth of
        # total_changes(): nothing else changes rows while it runs (no triggers, foreign
        # key actions or user callbacks); a DML statement is never read-only, and the
        # connection's own tracer (sqlkv's fencing guard, when it needs one) runs per row
        before = conn.total_changes()
        try:
            for _row in cur.executemany(sql, seq_of_parameters):
                raise ProgrammingError("executemany() can only execute DML statements.")
        except BaseException as exc:
            raise binding_error(exc) from exc
        finally:
            cur.close()
        cursor.rowcount = conn.total_changes() - before
        return cursor
    # else the changes of each row are summed by a tracer of the cursor. The connection's
    # own tracer (sqlkv's fencing guard, then the user's) runs before the first row (a
    # fence found later comes from a VFS call, which raises by itself); a user's tracer
    # (set_trace_callback) sees every row, as in the stdlib
    base_trace = _BASE_EXEC_TRACE.__get__(conn)
    per_row = base_trace if user_traced else None
    counted = [0, False]  # changes of the executions so far, whether one has started

    def trace(traced: apsw.Cursor, sql_text: str, bindings: Any) -> bool:
        if counted[1]:
            counted[0] += conn.changes()
            return True if per_row is None else bool(per_row(traced, sql_text, bindings))
        counted[1] = True
        if traced.is_readonly:
            raise ProgrammingError("executemany() can only execute DML statements.")
        return True if base_trace is None else bool(base_trace(traced, sql_text, bindings))

    cur.exec_trace = trace
    try:
        for _row in cur.executemany(sql, seq_of_parameters):
            raise ProgrammingError("executemany() can only execute DML statements.")
    except BaseException as exc:
        raise binding_error(exc) from exc
    finally:
        cur.close()
    if counted[1]:
        counted[0] += conn.changes()
    cursor.rowcount = counted[0] if info.is_dml else -1
    return cursor


# below this many rows a tracer per row costs less than reading the schema
_FEW_ROWS = 64


def _long(seq_of_parameters: Any) -> bool:
    """Whether the rows are many, or of unknown number (an iterator)."""
    try:
        return len(seq_of_parameters) >= _FEW_ROWS
    except TypeError:
        return True
