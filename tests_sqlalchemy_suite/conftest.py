"""Runs SQLAlchemy's dialect compliance suite against sqlite+sqlkv:// the way external
dialects run it: register the dialect, load SQLAlchemy's pytest plugin, and let
``suite_requirements.Requirements`` say what the dialect supports."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from sqlalchemy.dialects import registry

sys.path.insert(0, str(Path(__file__).parent))

# the entry points in pyproject.toml do this once the package is installed; registering
# here too lets the suite run from a source tree (PYTHONPATH=src)
registry.register("sqlite.sqlkv", "sqlkv.sqlalchemy.dialect", "SQLKVDialect")
registry.register("sqlite.sqlkv_async", "sqlkv.sqlalchemy.aio_dialect", "SQLKVDialect_async")

pytest.register_assert_rewrite("sqlalchemy.testing.assertions")

# SQLite's provisioning hooks (temp tables, upsert, dispose per class) apply to sqlite+sqlkv
# too, except ATTACH of a file as the suite's "test_schema": a sqlkv connection refuses to
# attach files (one database per connection), so test_schema is an attached in-memory
# database, created on each new connection (the pool holds one per engine)
import sqlalchemy.dialects.sqlite.provision  # noqa: E402, F401
from sqlalchemy import event  # noqa: E402
from sqlalchemy.testing.provision import (  # noqa: E402
    generate_driver_url,
    post_configure_engine,
)


@generate_driver_url.for_db("sqlite")
def _keep_the_name(url: object, driver: object, query_str: object) -> object:
    # SQLite's hook renames the database to a file "<name>_<driver>.db"; a sqlkv database
    # is a name in a store, kept as given
    return url


@post_configure_engine.for_db("sqlite")
def _attach_memory_schema(url: object, engine: object, follower_ident: object) -> None:
    @event.listens_for(engine, "connect")
    def attach(dbapi_connection: object, connection_record: object) -> None:
        dbapi_connection.execute("ATTACH DATABASE ':memory:' AS test_schema")  # type: ignore[attr-defined]


from sqlalchemy.testing.plugin.pytestplugin import *  # noqa: E402, F403
