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
"""

from __future__ import annotations

import hashlib

from psycopg import sql

COMMIT_FUNCTION_VERSION = 1

_NAME_MAX = 63  # PostgreSQL's identifier length (NAMEDATALEN - 1)

# The commit function's arguments, all bytea[] (NULL = none): guards (keys, expected
# values), clear ranges (begins, ends), sets (keys, values), clears (keys), the read
# ranges of one key (their keys: an indexed lookup) and the other read ranges (begins, ends).
_ARGS = ("gk", "gv", "cb", "ce", "sk", "sv", "dk", "rk", "rb", "re")

_FUNCTION_BODY = """
DECLARE
  found bytea;
  answer bytea[] := ARRAY[]::bytea[];
  holds boolean := true;
BEGIN
  IF gk IS NOT NULL THEN
    FOR i IN 1 .. cardinality(gk) LOOP
      SELECT t.value INTO found FROM {t} AS t WHERE t.key = gk[i];
      answer := array_append(answer, found);
      holds := holds AND found IS NOT DISTINCT FROM gv[i];
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
