"""Runs SQLAlchemy's dialect compliance suite against sqlite+sqlkv:// the way external
dialects run it: register the dialect, load SQLAlchemy's pytest plugin, and let
``suite_requirements.Requirements`` say what the dialect supports."""

from __future__ import annotations

import sys
from collections.abc import Iterator
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
# too, except two: the database keeps its sqlkv name (SQLite's hook renames it to a file
# "<name>_<driver>.db"), and no file is ATTACHed as "test_schema" (a sqlkv connection
# refuses to attach files; suite_requirements closes "schemas" and says why)
import sqlalchemy.dialects.sqlite.provision  # noqa: E402, F401
from sqlalchemy.testing.provision import (  # noqa: E402
    generate_driver_url,
    post_configure_engine,
)


@generate_driver_url.for_db("sqlite")
def _keep_the_name(url: object, driver: object, query_str: object) -> object:
    return url


@post_configure_engine.for_db("sqlite")
def _no_attached_schema(url: object, engine: object, follower_ident: object) -> None:
    return None


@pytest.fixture(autouse=True)
def _fresh_owner_per_test() -> Iterator[None]:
    """Some tests open engines of their own on the database; the first connection of such
    an engine takes the database over and fences the main engine's pooled one. Returning
    that connection after each test makes the next test start as the owner again, so a
    takeover never fails the test after the one that made it."""
    yield
    from sqlalchemy.testing import config

    if config.db is not None:
        config.db.dispose()


from sqlalchemy.testing.plugin.pytestplugin import *  # noqa: E402, F403
