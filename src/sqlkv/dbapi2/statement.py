"""What ``sqlkv.dbapi2`` must know of a SQL string before running it, as the stdlib decides
it: whether it holds more than one statement (``execute`` refuses that) and whether it is
DML (INSERT/UPDATE/DELETE/REPLACE: the legacy transaction mode opens a transaction before
it). Results are cached per SQL text (the text alone decides both). And whether the rows a
statement changes are all the connection changes (``changes_are_direct``), which lets
``executemany`` count them without a Python call per row.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import apsw

_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)
_DML = ("INSERT", "UPDATE", "DELETE", "REPLACE")
_CACHE_LIMIT = 4096


class Info(NamedTuple):
    single: bool  # at most one statement (comments and whitespace may follow it)
    is_dml: bool
    returning: bool  # DML that may return rows (a RETURNING clause)


cache: dict[str, Info] = {}

# the hot paths' view of the same cache: single statements only, by kind. Empty for good
# once an adapter is registered for a type apsw binds itself (types.register_adapter):
# the hot paths bind parameters as they come, and then every one must be adapted first
READ, DML, RETURNING = 0, 1, 2
kinds: dict[str, int] = {}
native_adapted = False


def complete_statement(statement: str) -> bool:
    """Whether ``statement`` holds one or more complete SQL statements (``sqlite3_complete``)."""
    if not isinstance(statement, str):
        kind = type(statement).__name__
        raise TypeError(f"complete_statement() argument must be str, not {kind}")
    return bool(apsw.complete(statement))


def info(sql: str) -> Info:
    found = cache.get(sql)
    if found is None:
        found = _analyse(sql)
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
            kinds.clear()
        cache[sql] = found
        if found.single and not native_adapted:
            kinds[sql] = RETURNING if found.returning else DML if found.is_dml else READ
    return found


def _analyse(sql: str) -> Info:
    start = skip_space_and_comments(sql, 0)
    word = sql[start : start + 7].upper()
    is_dml = word.startswith(_DML)
    returning = is_dml and _RETURNING.search(sql) is not None
    if ";" not in sql:
        return Info(True, is_dml, returning)
    end = _first_statement_end(sql, start)
    single = end is None or skip_space_and_comments(sql, end) >= len(sql)
    return Info(single, is_dml, returning)


def skip_space_and_comments(sql: str, i: int) -> int:
    """The index of the first character at or after ``i`` that is not space or a comment."""
    n = len(sql)
    while i < n:
        c = sql[i]
        if c.isspace():
            i += 1
        elif sql.startswith("--", i):
            nl = sql.find("\n", i)
            i = n if nl < 0 else nl + 1
        elif sql.startswith("/*", i):
            close = sql.find("*/", i + 2)
            i = n if close < 0 else close + 2
        else:
            break
    return i


_CLOSERS = {"'": "'", '"': '"', "`": "`", "[": "]"}


def _first_statement_end(sql: str, i: int) -> int | None:
    """The index just past the ``;`` that ends the first statement (triggers included)."""
    n = len(sql)
    while i < n:
        c = sql[i]
        closer = _CLOSERS.get(c)
        if closer is not None:
            close = sql.find(closer, i + 1)
            i = n if close < 0 else close + 1
        elif sql.startswith("--", i) or sql.startswith("/*", i):
            i = skip_space_and_comments(sql, i)
        elif c == ";":
            i += 1
            if apsw.complete(sql[:i]):
                return i
        else:
            i += 1
    return None


# anything that makes SQLite change rows besides the statement itself: triggers (also
# INSTEAD OF on views) and foreign key actions (a REFERENCES clause; conservative)
_INDIRECT = (
    "SELECT 1 FROM sqlite_schema WHERE type = 'trigger' OR sql LIKE '%REFERENCES%' "
    "UNION ALL SELECT 1 FROM sqlite_temp_schema WHERE type = 'trigger' LIMIT 1"
)


def changes_are_direct(connection: Any, conn: apsw.Connection) -> bool:
    """Whether every row change during a statement is the statement's own, so that the
    growth of ``total_changes()`` equals the sum of ``changes()`` (what the stdlib reports as
    ``rowcount``): no triggers, no foreign key actions, no attached databases, and no user
    callbacks on ``connection`` (a user function may run statements of its own)."""
    if connection._callbacks or len(conn.db_names()) > 2:
        return False
    for _row in conn.execute(_INDIRECT):
        return False
    return True
