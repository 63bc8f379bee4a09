"""Connections of the PostgreSQL store: the URL (``CONNECTION_DEFAULTS`` added; described
for messages without its password), the table name check, and the pool of idle
connections with its check that an idle connection is still alive.
"""

from __future__ import annotations

import re
import select
import threading
from typing import Any

import psycopg
from psycopg import pq, sql

from sqlkv.errors import ConfigError, StoreError, StoreUnavailable
from sqlkv.store.postgres_errors import Connection, first_line, is_lost

CONNECTION_DEFAULTS = {
    "connect_timeout": "5",
    "application_name": "sqlkv",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
}

# Every pooled connection's session settings, in one round trip when it connects:
# - SERIALIZABLE by default: a statement outside BEGIN is a transaction of its own, and the
#   commit function called alone (postgres.py) must run at SERIALIZABLE like every one.
# - generic plans: the commit function's statements and the driver's reads take their
#   parameters from arrays whose length the planner would otherwise re-estimate per call,
#   so PL/pgSQL kept custom plans and planned its statements again on every commit (about
#   a fifth of the function's server time; docs/round-trips.md "PostgreSQL"). Every
#   statement this driver sends is an indexed lookup or range of the primary key, the
#   plan a generic plan picks whatever the parameters.
SESSION_SETTINGS = (
    "SELECT set_config('default_transaction_isolation', 'serializable', false), "
    "set_config('plan_cache_mode', 'force_generic_plan', false)"
)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class Pool:
    """Idle connections, at most ``size`` of them; opens another when none is idle."""

    def __init__(self, conninfo: str, size: int, where: str) -> None:
        self._conninfo = conninfo
        self._size = size
        self._where = where
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def get(self) -> Connection:
        while True:
            with self._lock:
                if self._closed:
                    raise StoreError("this PostgreSQL store is closed; open a new one")
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self._connect()
            if not looks_closed(conn):
                return conn
            conn.close()

    def put(self, conn: Connection) -> None:
        # libpq answers UNKNOWN for a closed or broken connection.
        healthy = conn.pgconn.transaction_status == pq.TransactionStatus.IDLE
        with self._lock:
            if healthy and not self._closed and len(self._idle) < self._size:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _connect(self) -> Connection:
        conn: Connection | None = None
        try:
            conn = psycopg.connect(self._conninfo, autocommit=True)
            conn.execute(SESSION_SETTINGS)
            return conn
        except psycopg.Error as exc:
            if conn is not None:
                conn.close()
            # libpq says why (refused, timeout, password, no such database) but gives no
            # SQLSTATE for a failed connection, so all of them are StoreUnavailable.
            raise StoreUnavailable(
                f"cannot connect to PostgreSQL at {self._where}: {first_line(exc)}. "
                "Check that the server is running and reachable, and the URL's host, port, "
                "user, password and database."
            ) from exc


def looks_closed(conn: Connection) -> bool:
    """True when an idle connection is dead: closed here, or the server has sent something
    unasked (it only does so to end the session) or closed its end. Costs no round trip."""
    if is_lost(conn):
        return True
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def table_identifier(table: str) -> sql.Identifier:
    parts = table.split(".") if isinstance(table, str) else []
    if not 1 <= len(parts) <= 2 or not all(_NAME.fullmatch(p) for p in parts):
        raise ConfigError(
            f"invalid table name {table!r}: use NAME or SCHEMA.NAME, each a letter or "
            "underscore followed by up to 62 letters, digits or underscores"
        )
    return sql.Identifier(*parts)


def describe(params: dict[str, Any]) -> str:
    """host:port/dbname as user, for messages (never the password)."""
    host = params.get("host") or params.get("hostaddr") or "localhost"
    port = params.get("port") or "5432"
    where = f"{host}:{port}"
    if params.get("dbname"):
        where += f"/{params['dbname']}"
    if params.get("user"):
        where += f" (user {params['user']})"
    return where


def public_url(params: dict[str, Any]) -> str:
    """The store's URL without its password."""
    host = params.get("host") or params.get("hostaddr") or ""
    port = params.get("port")
    user = params.get("user")
    netloc = (f"{user}@" if user else "") + host + (f":{port}" if port else "")
    return f"postgresql://{netloc}/{params.get('dbname', '')}"
