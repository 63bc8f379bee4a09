"""The SQL the PostgreSQL store sends, rendered once per table, and its schema: the table
and the commit function, created when missing (a versioned, idempotent migration).

The commit function (``COMMIT_FUNCTION_VERSION``; docs/round-trips.md, "PostgreSQL") does
a whole commit in one statement: it checks the guards, applies clear ranges, sets and
clears, and locks every row of the read-conflict set (``FOR SHARE NOWAIT``), exactly the
statements the driver used to pipeline one by one. It returns NULL when it applied, or
the guarded keys' current values (aligned with the guards, NULL = absent) when a guard did
not hold, having applied nothing. Its body is static SQL naming the table, so PL/pgSQL
keeps its plans per connection.

Versioning: the version is part of the function's name (``<table>_commit_v1``), and a
function of a given name is never replaced. A changed body gets a new version, so processes
of two releases on one table each call the function they were written for; the old one is
left for whoever still runs it (``PostgresStore.drop`` removes this version's).

The call (``CommitCall``) goes below psycopg's cursor, straight to libpq: the statement is
prepared once per connection, its ``bytea[]`` arguments are encoded here in PostgreSQL's
binary array format, and ``PQexecPrepared`` runs it (releasing the GIL). psycopg's cursor
machinery cost three times the client CPU of the call itself (measured: 270-430 us against
70-120 us per commit), the largest part of the driver's share of a small commit.
"""

from __future__ import annotations

import hashlib
import struct
import weakref
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import pq, sql

COMMIT_FUNCTION_VERSION = 1

_NAME_MAX = 63  # PostgreSQL's identifier length (NAMEDATALEN - 1)
_BYTEA_ARRAY_OID = 1001
_BYTEA_OID = 17
_ARRAY_HEAD = struct.Struct("!iiIii")  # dimensions, has NULLs, element type, length, lower bound
_LENGTH = struct.Struct("!i")
_NULL = _LENGTH.pack(-1)
_NOT_PREPARED = b"26000"  # invalid_sql_statement_name

# The commit function's arguments, all bytea[] (NULL = none): guards (keys, expected
# values), clear ranges (begins, ends), sets (keys, values), clears (keys), the read
# ranges of one key (their keys: an indexed lookup) and the other read ranges (begins, ends).
_ARGS = ("gk", "gv", "cb", "ce", "sk", "sv", "dk", "rk", "rb", "re")

_FUNCTION_BODY = """
DECLARE
  stored bytea;
  answer bytea[] := ARRAY[]::bytea[];
  holds boolean := true;
BEGIN
  IF gk IS NOT NULL THEN
    FOR i IN 1 .. cardinality(gk) LOOP
      SELECT t.value INTO stored FROM {t} AS t WHERE t.key = gk[i];
      answer := array_append(answer, stored);
      holds := holds AND stored IS NOT DISTINCT FROM gv[i];
    END LOOP;
    IF NOT holds THEN
      RETURN answer;
    END IF;
  END IF;
  IF cb IS NOT NULL THEN
    DELETE FROM {t} AS t USING unnest(cb, ce) AS r(b, e) WHERE t.key >= r.b AND t.key < r.e;
  END IF;
  IF sk IS NOT NULL THEN
    INSERT INTO {t} (key, value) SELECT * FROM unnest(sk, sv)
      ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
  END IF;
  IF dk IS NOT NULL THEN
    DELETE FROM {t} WHERE key = ANY(dk);
  END IF;
  IF rk IS NOT NULL THEN
    PERFORM 1 FROM {t} AS t WHERE t.key = ANY(rk) FOR SHARE OF t NOWAIT;
  END IF;
  IF rb IS NOT NULL THEN
    PERFORM 1 FROM {t} AS t JOIN unnest(rb, re) AS r(b, e) ON t.key >= r.b AND t.key < r.e
      FOR SHARE OF t NOWAIT;
  END IF;
  RETURN NULL;
END
"""


def commit_function_name(table: str, version: int = COMMIT_FUNCTION_VERSION) -> sql.Identifier:
    """``[schema.]<table>_commit_v<version>``; a table name too long for the suffix is cut
    and made unique by a hash of the whole name."""
    *schema, name = table.split(".")
    suffix = f"_commit_v{version}"
    if len(name) + len(suffix) > _NAME_MAX:
        tag = hashlib.blake2b(name.encode(), digest_size=4).hexdigest()
        name = f"{name[: _NAME_MAX - len(suffix) - len(tag) - 1]}_{tag}"
    return sql.Identifier(*schema, name + suffix)


class Statements:
    """The SQL this driver sends, rendered once for one table."""

    def __init__(self, table: sql.Identifier, function: sql.Identifier) -> None:
        def render(text: str) -> str:
            return sql.SQL(text).format(t=table, f=function).as_string(None)

        self.create = render(
            "CREATE TABLE IF NOT EXISTS {t} (key bytea PRIMARY KEY, value bytea NOT NULL)"
        )
        self.get = render("SELECT value FROM {t} WHERE key = %b")
        self.get_many = render("SELECT key, value FROM {t} WHERE key = ANY(%b::bytea[])")
        self.range_forward = render(
            "SELECT key, value FROM {t} WHERE key >= %b AND key < %b ORDER BY key LIMIT %b"
        )
        self.range_reverse = render(
            "SELECT key, value FROM {t} WHERE key >= %b AND key < %b ORDER BY key DESC LIMIT %b"
        )
        signature = ", ".join(f"{a} bytea[]" for a in _ARGS)
        self.create_function = render(
            f"CREATE FUNCTION {{f}}({signature}) RETURNS bytea[] LANGUAGE plpgsql AS "
        ) + sql.Literal(sql.SQL(_FUNCTION_BODY).format(t=table).as_string(None)).as_string(None)
        self.function_signature = (
            function.as_string(None) + "(" + ", ".join("bytea[]" for _ in _ARGS) + ")"
        )
        self.function_exists = "SELECT to_regprocedure(%s) IS NOT NULL"
        self.drop = [
            render("DROP TABLE IF EXISTS {t}"),
            f"DROP FUNCTION IF EXISTS {self.function_signature}",
        ]
        self.commit = render("SELECT {f}(" + ", ".join("%b::bytea[]" for _ in _ARGS) + ")")
        self.commit_native = render(
            "SELECT {f}(" + ", ".join(f"${i}" for i in range(1, len(_ARGS) + 1)) + ")"
        )


class CommitCall:
    """Runs the commit function on a connection outside a transaction block, prepared once
    per connection; raises ``psycopg.Error`` as a cursor would."""

    def __init__(self, statements: Statements, version: int = COMMIT_FUNCTION_VERSION) -> None:
        self._name = f"sqlkv_commit_v{version}".encode()
        self._query = statements.commit_native.encode()
        self._types = [_BYTEA_ARRAY_OID] * len(_ARGS)
        self._binary = [1] * len(_ARGS)
        self._prepared: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()

    def __call__(
        self, conn: psycopg.Connection[Any], params: Sequence[Sequence[bytes | None] | None]
    ) -> list[bytes | None] | None:
        """The function's answer: None when it applied, else the guarded keys' values."""
        pgconn = conn.pgconn
        encoded = [None if p is None else encode_bytea_array(p) for p in params]
        for _ in range(2):
            if conn not in self._prepared:
                _check(conn, pgconn.prepare(self._name, self._query, self._types))
                self._prepared.add(conn)
            # None is NULL (psycopg's own dumpers send it so; its stub does not say it)
            result = pgconn.exec_prepared(self._name, encoded, self._binary, 1)  # type: ignore[arg-type]
            if result.error_field(pq.DiagnosticField.SQLSTATE) != _NOT_PREPARED:
                break
            # psycopg deallocates every prepared statement after a DROP or a ROLLBACK it
            # ran; the call failed before it started (nothing applied): prepare it again.
            self._prepared.discard(conn)
        _check(conn, result)
        answer = result.get_value(0, 0)
        return None if answer is None else decode_bytea_array(answer)


def _check(conn: psycopg.Connection[Any], result: pq.abc.PGresult) -> None:
    if result.status == pq.ExecStatus.FATAL_ERROR:
        raise psycopg.errors.error_from_result(result, encoding=conn.info.encoding)
    if result.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
        raise psycopg.OperationalError(f"unexpected result from the server: {result.status}")


def encode_bytea_array(items: Sequence[bytes | None]) -> bytes:
    """A one-dimensional ``bytea[]`` in PostgreSQL's binary format (``array_send``)."""
    parts = [b""]
    nulls = 0
    for item in items:
        if item is None:
            parts.append(_NULL)
            nulls = 1
        else:
            parts.append(_LENGTH.pack(len(item)))
            parts.append(item)
    parts[0] = _ARRAY_HEAD.pack(1, nulls, _BYTEA_OID, len(items), 1)
    return b"".join(parts)


def decode_bytea_array(data: bytes) -> list[bytes | None]:
    """The inverse of ``encode_bytea_array`` (an empty array has no dimensions)."""
    view = memoryview(data)
    dims = _LENGTH.unpack_from(view, 0)[0]
    if dims == 0:
        return []
    _, _, _, count, _ = _ARRAY_HEAD.unpack_from(view, 0)
    items: list[bytes | None] = []
    at = _ARRAY_HEAD.size
    for _ in range(count):
        size = _LENGTH.unpack_from(view, at)[0]
        at += 4
        if size < 0:
            items.append(None)
        else:
            items.append(bytes(view[at : at + size]))
            at += size
    return items
