"""What the first argument of ``sqlkv.dbapi2.connect`` names, and opening it.

- A plain name (``"orders"``) is a sqlkv database in the store (``store=``/``engine=``, else
  ``$SQLKV_STORE``/``$SQLKV_ENGINE``, else ``./sqlkv-data``), as ``sqlkv.connect`` resolves it.
- ``":memory:"`` and ``""`` (the stdlib's private temporary database) are a private database in
  a new in-process memory store: no other connection sees it and it is gone at ``close()``,
  as in the stdlib. So tests and scripts that use ``":memory:"`` run unchanged.
- A filesystem path (a ``PathLike`` or ``bytes``, a name with a path separator, or one
  ending in ``.db``, ``.sqlite``, ``.sqlite3``, ``.db3``) is refused with
  ``OperationalError`` (also a ``ConfigError``) saying what to do. Mapping a path to a store
  name silently would hand the user a new, empty database while their file still holds the
  data: the error is the honest answer. (``sqlkv import FILE NAME`` loads the file.)
- ``uri=True``: ``file:NAME`` names NAME; ``file::memory:`` or ``?mode=memory`` is private
  memory; ``mode=ro``/``rw``/``rwc`` and ``cache=`` are accepted and have no effect.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import apsw

from sqlkv.dbapi2.exceptions import config_error

MEMORY = ":memory:"
FILE_SUFFIXES = (".db", ".sqlite", ".sqlite3", ".db3")
_URI_OPTIONS = {"mode", "cache", "immutable", "nolock", "vfs"}


def resolve(database: Any, uri: bool) -> str | None:
    """The sqlkv database name ``database`` stands for; None for a private memory database."""
    if isinstance(database, bytes | os.PathLike):
        raise config_error(_path_message(os.fsdecode(database)))
    if not isinstance(database, str):
        raise TypeError(
            f"connect() argument 'database' must be str, bytes or os.PathLike, "
            f"not {type(database).__name__}"
        )
    if uri and database.startswith("file:"):
        return _resolve_uri(database)
    if database in ("", MEMORY):
        return None
    if os.sep in database or "/" in database or database.lower().endswith(FILE_SUFFIXES):
        raise config_error(_path_message(database))
    return database


def _resolve_uri(text: str) -> str | None:
    parts = urlsplit(text)
    options = dict(parse_qsl(parts.query))
    unknown = set(options) - _URI_OPTIONS
    if unknown:
        raise config_error(
            f"URI {text!r}: unknown option(s) {', '.join(sorted(unknown))}; sqlkv accepts "
            f"{', '.join(sorted(_URI_OPTIONS))} (store and engine are connect() arguments)"
        )
    path = unquote(parts.path)
    if path in ("", MEMORY) or options.get("mode") == "memory":
        return None
    return resolve(path, uri=False)


def _path_message(path: str) -> str:
    return (
        f"{path!r} looks like a file path, but sqlkv.dbapi2 databases live in a sqlkv "
        "store and are named, not found on disk: connect('orders', store=...) (or "
        "$SQLKV_STORE). To bring an existing SQLite file in, run `sqlkv import "
        f"{path} NAME`; to open a plain SQLite file, use the stdlib sqlite3 module"
    )


def open_apsw(
    name: str | None, store: Any, engine: Any, token: str | None, options: dict[str, Any]
) -> apsw.Connection:
    """The sqlkv apsw connection for ``name`` (from ``resolve``)."""
    from sqlkv.client import connect

    if name is None:
        if store is not None or engine is not None:
            raise config_error(
                "':memory:' is a private in-process database: it takes no store= or engine="
            )
        conn: apsw.Connection = connect("memory", "memory://", **options)
    else:
        conn = connect(name, store, engine=engine, token=token, **options)
    return conn
