"""Where a client finds its databases: one configuration for the library and the command line.

    cfg = ClientConfig.from_env(store="/var/lib/sqlkv")   # flag > environment > default
    cfg.validate()
    with cfg.open_engine() as opened:
        opened.engine.head("orders")

Every setting is resolved the same way, **at call time** (never at import): a value given
by the caller (a command-line flag, a ``sqlkv.connect`` argument), else the environment
variable, else the default held here.

| setting      | environment     | default          | meaning                                   |
|--------------|-----------------|------------------|-------------------------------------------|
| ``store``    | ``SQLKV_STORE`` | ``./sqlkv-data`` | store URL (``sqlkv.store.url``)           |
| ``engine``   | ``SQLKV_ENGINE``| none             | ``sqlkv://host:port[,host:port...]``      |
| ``token``    | ``SQLKV_TOKEN`` | none             | token sent to the engine server           |
| ``cache_size``| -              | 64 MiB           | VFS page cache, bytes or ``"64MiB"``      |
| ``format``   | -               | ``v2``           | ``v2`` (engine) or ``v1`` (chunked files) |

Store or engine: with an engine URL the client talks to ``sqlkv serve`` and the store is
the server's business. An explicit store (given by the caller) wins over an engine and
token that come from the environment, so ``sqlkv --store DIR list`` works in a shell that
exports ``SQLKV_ENGINE``; giving both explicitly is an error. When both come from the
environment, the engine is used.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from sqlkv.errors import ConfigError

if TYPE_CHECKING:
    from sqlkv.engine.api import EngineApi
    from sqlkv.store import Store

MiB = 1024 * 1024
DEFAULT_STORE_URL = "./sqlkv-data"
FORMATS = ("v2", "v1")
ENVIRONMENT = {"store": "SQLKV_STORE", "engine": "SQLKV_ENGINE", "token": "SQLKV_TOKEN"}
"""The environment variable of each setting that has one."""


@dataclass(frozen=True)
class ClientConfig:
    """Every client-side default in one place (see the module docstring for the table).

    ``store`` is always set (it is also what store-level tools such as ``sqlkv list`` use);
    ``engine`` None means "run the engine in this process on ``store``". ``token`` is only
    sent to an engine server. ``cache_size`` is in bytes once validated.
    """

    store: str = DEFAULT_STORE_URL
    engine: str | None = None
    token: str | None = None
    cache_size: int | str = 64 * MiB
    format: str = "v2"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ClientConfig:
        """Resolve every setting: ``overrides`` (None = not given) > ``environ`` > default.

        ``environ`` defaults to ``os.environ``, read now; an empty variable counts as unset.
        Unknown override names raise ``ConfigError`` listing the valid ones. The result is
        validated.
        """
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(overrides) - set(valid))
        if unknown:
            raise ConfigError(
                f"unknown client setting(s) {', '.join(unknown)}; valid settings: "
                f"{', '.join(valid)}"
            )
        env = os.environ if environ is None else environ
        given = {k: v for k, v in overrides.items() if v is not None}
        if "store" in given and "engine" in given:
            raise ConfigError(
                "give a store URL or an engine URL, not both: an engine server brings its own store"
            )
        values: dict[str, Any] = {}
        for name, var in ENVIRONMENT.items():
            if env.get(var):
                values[name] = env[var]
        if "store" in given:  # an explicit store beats an engine from the environment
            values.pop("engine", None)
            values.pop("token", None)
        values.update(given)
        config = cls(**values)
        return config.validated()

    def validated(self) -> ClientConfig:
        """``validate()``, then this config with ``cache_size`` converted to bytes."""
        self.validate()
        from sqlkv.vfs.v2.config import parse_cache_size

        return replace(self, cache_size=parse_cache_size(self.cache_size))

    def validate(self) -> None:
        """Raise ``ConfigError`` naming the first setting that is wrong and how to fix it."""
        if not isinstance(self.store, str) or not self.store.strip():
            raise ConfigError(
                f"store must be a non-empty URL or directory, got {self.store!r}; "
                f"set --store or {ENVIRONMENT['store']}"
            )
        from sqlkv.store.url import parse_store_url

        parse_store_url(self.store)
        if self.engine is not None:
            if not isinstance(self.engine, str):
                raise ConfigError(f"engine must be a sqlkv:// URL, got {self.engine!r}")
            from sqlkv.server.client import parse_engine_url

            parse_engine_url(self.engine)
        if self.token is not None:
            if not isinstance(self.token, str) or not self.token:
                raise ConfigError("token must be a non-empty string")
            if self.engine is None:
                raise ConfigError(
                    f"a token is set ({ENVIRONMENT['token']} or --token) but no engine URL: "
                    f"tokens authenticate to engine servers; set --engine or "
                    f"{ENVIRONMENT['engine']} too, or unset the token"
                )
        if self.format not in FORMATS:
            raise ConfigError(
                f"unknown format {self.format!r}; valid formats: {', '.join(FORMATS)}"
            )
        if self.format == "v1" and self.engine is not None:
            raise ConfigError(
                "format v1 talks to the store directly and cannot go through an engine "
                "server; give a store instead of an engine"
            )
        from sqlkv.vfs.v2.config import parse_cache_size

        parse_cache_size(self.cache_size)

    @property
    def cache_bytes(self) -> int:
        from sqlkv.vfs.v2.config import parse_cache_size

        return parse_cache_size(self.cache_size)

    @property
    def target(self) -> str:
        """Where databases live, for messages: the engine URL, else the store URL (without
        its password; a bare directory made absolute)."""
        if self.engine:
            return self.engine
        if "://" not in self.store:
            return os.path.abspath(os.path.expanduser(self.store))
        return redact_url(self.store)

    # ------------------------------------------------------------------ opening

    def open_store(self) -> Store:
        """Open the configured store (the caller closes it)."""
        from sqlkv.store import open_store

        return open_store(self.store)

    @contextmanager
    def open_engine(self, *, compaction: bool = False) -> Iterator[OpenedEngine]:
        """The configured engine: a network client for ``engine``, else an in-process
        ``Engine`` on a store opened here (with background compaction if ``compaction``).
        Everything opened here is closed on exit."""
        opened = self.build_engine(compaction=compaction)
        try:
            yield opened
        finally:
            opened.close()

    def build_engine(self, *, compaction: bool = False) -> OpenedEngine:
        """Like ``open_engine``, for callers that hand the closing on (``sqlkv.connect``)."""
        if self.engine is not None:
            from sqlkv.server.client import connect_engine

            remote = connect_engine(self.engine, self.token)
            return OpenedEngine(remote, None, [remote.close])
        from sqlkv.engine import Engine

        store = self.open_store()
        try:
            engine = Engine(store, compaction=compaction)
        except BaseException:
            store.close()
            raise
        return OpenedEngine(engine, store, [store.close, engine.close])


@dataclass
class OpenedEngine:
    """An engine and what was opened for it. ``store`` is None behind an engine server."""

    engine: EngineApi
    store: Store | None
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Run the closers, last opened first."""
        while self.closers:
            self.closers.pop()()


def redact_url(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
