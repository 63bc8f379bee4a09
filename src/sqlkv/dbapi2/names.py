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
- ``uri=True``: ``file:NAME?QUERY`` names NAME by the same rules; the query is SQLite's
  URI parameters, mapped onto sqlkv's connect options (docs/python-dbapi.md §1):
  ``mode=ro`` (and ``immutable=1``) is a read-only connection (``readonly=True``),
  ``mode=rw`` opens an existing database only, ``mode=rwc`` is the default,
  ``mode=memory`` or ``file::memory:`` private memory; ``cache=private``, ``nolock`` and
  ``psow`` change nothing; ``cache=shared``, ``vfs=`` and unknown parameters are refused.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import apsw

from sqlkv.dbapi2.exceptions import NotSupportedError, OperationalError, config_error
from sqlkv.errors import ConfigError, DatabaseNotFound, dual_error

MEMORY = ":memory:"
FILE_SUFFIXES = (".db", ".sqlite", ".sqlite3", ".db3")
_MODES = ("ro", "rw", "rwc", "memory")
_TRUE = ("1", "yes", "true", "on")
_FALSE = ("0", "no", "false", "off")
_NO_EFFECT = ("nolock", "psow")  # file locking, powersafe overwrite: sqlkv has no file


@dataclass(frozen=True)
class Target:
    """What ``connect``'s first argument opens: ``name`` (None: a private memory database),
    read-only or not, and whether a missing database is created."""

    name: str | None
    readonly: bool = False
    create: bool = True
    uri: str | None = None  # the URI it came from, for messages


def resolve(database: Any, uri: bool) -> Target:
    """What ``database`` stands for (``uri``: whether ``file:`` URIs are parsed)."""
    if isinstance(database, bytes | os.PathLike):
        raise config_error(_path_message(os.fsdecode(database)))
    if not isinstance(database, str):
        raise TypeError(
            f"connect() argument 'database' must be str, bytes or os.PathLike, "
            f"not {type(database).__name__}"
        )
    if uri and database.startswith("file:"):
        return _resolve_uri(database)
    return Target(_plain_name(database))


def _plain_name(database: str) -> str | None:
    if database in ("", MEMORY):
        return None
    if os.sep in database or "/" in database or database.lower().endswith(FILE_SUFFIXES):
        raise config_error(_path_message(database))
    return database


def _resolve_uri(text: str) -> Target:
    parts = urlsplit(text)
    if parts.netloc not in ("", "localhost"):
        raise _sqlite_error(f"invalid uri authority: {parts.netloc}")
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    options = dict(pairs)
    twice = sorted(key for key, n in Counter(key for key, _ in pairs).items() if n > 1)
    if twice:
        raise config_error(f"URI {text!r}: {', '.join(twice)} given more than once")
    unknown = set(options) - {"mode", "cache", "immutable", "vfs", *_NO_EFFECT}
    if unknown:
        raise config_error(
            f"URI {text!r}: unknown parameter(s) {', '.join(sorted(unknown))}; sqlkv takes "
            "SQLite's mode, cache, immutable, nolock and psow (store=, engine=, readonly= "
            "are connect() arguments)"
        )
    mode = options.get("mode", "rwc")
    if mode not in _MODES:
        raise _sqlite_error(f"no such access mode: {mode}")
    cache = options.get("cache", "private")
    if cache not in ("private", "shared"):
        raise _sqlite_error(f"no such cache mode: {cache}")
    if cache == "shared":
        raise dual_error(
            NotSupportedError,
            ConfigError(text),
            f"URI {text!r}: sqlkv connections share no cache and no database: a database has "
            "one owner connection at a time (a second connect fences the first), and each "
            "':memory:' database is private. Share one connection (check_same_thread=False) "
            "or add read-only readers (mode=ro); drop cache=shared",
        )
    if "vfs" in options:
        raise _sqlite_error(
            f"no such vfs: {options['vfs']} (sqlkv opens every database through its own "
            "VFS; drop vfs= from the URI)"
        )
    for key in ("immutable", *_NO_EFFECT):
        if key in options and options[key].lower() not in _TRUE + _FALSE:
            raise config_error(f"URI {text!r}: {key}={options[key]!r}; give 1 or 0")
    path = unquote(parts.path)
    if path in ("", MEMORY) or mode == "memory":
        return Target(None, uri=text)
    immutable = options.get("immutable", "0").lower() in _TRUE
    return Target(
        _plain_name(path), readonly=mode == "ro" or immutable, create=mode == "rwc", uri=text
    )


def _sqlite_error(message: str) -> OperationalError:
    """The error SQLite's own URI parsing raises (SQLITE_ERROR), with its words."""
    exc = OperationalError(message)
    exc.sqlite_errorcode, exc.sqlite_errorname = 1, "SQLITE_ERROR"
    return exc


def _path_message(path: str) -> str:
    return (
        f"{path!r} looks like a file path, but sqlkv.dbapi2 databases live in a sqlkv "
        "store and are named, not found on disk: connect('orders', store=...) (or "
        "$SQLKV_STORE). To bring an existing SQLite file in, run `sqlkv import "
        f"{path} NAME`; to open a plain SQLite file, use the stdlib sqlite3 module"
    )


def open_apsw(
    target: Target, store: Any, engine: Any, token: str | None, options: dict[str, Any]
) -> apsw.Connection:
    """The sqlkv apsw connection for ``target`` (from ``resolve``)."""
    from sqlkv.client import connect

    if target.name is None:
        if store is not None or engine is not None:
            raise config_error(
                "':memory:' is a private in-process database: it takes no store= or engine="
            )
        conn: apsw.Connection = connect("memory", "memory://", **options)
        return conn
    if target.uri is not None:
        options = _uri_options(target, options)
    try:
        conn = connect(target.name, store, engine=engine, token=token, **options)
    except DatabaseNotFound as exc:
        if target.uri is None:
            raise
        how = "mode=ro opens" if target.readonly else "mode=rw opens"
        raise dual_error(
            OperationalError,
            exc,
            f"unable to open database file: database {target.name!r} does not exist in the "
            f"store ({how} an existing database only; mode=rwc creates it)",
        ) from exc
    return conn


def _uri_options(target: Target, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with what the URI's mode says, refusing keywords that contradict it."""
    readonly = options.get("readonly")
    if target.readonly and readonly is False:
        raise config_error(f"URI {target.uri!r} is read-only: drop readonly=False")
    if not target.readonly and (readonly or options.get("at") is not None):
        raise config_error(
            f"URI {target.uri!r} opens for writing, readonly=/at= for reading: use mode=ro"
        )
    if target.readonly:
        return {**options, "readonly": True}
    if not target.create:
        return {**options, "create": False}
    return options
