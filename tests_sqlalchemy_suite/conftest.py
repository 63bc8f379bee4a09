"""Runs SQLAlchemy's dialect compliance suite against sqlite+sqlkv:// the way external
dialects run it: register the dialect, load SQLAlchemy's pytest plugin, and let
``suite_requirements.Requirements`` say what the dialect supports."""

from __future__ import annotations

import os
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


EXCLUDED_TESTS: dict[tuple[str, str] | tuple[str, str, str], str] = {
    ("IntegerTest", "test_huge_int"): "its integer_round_trip fixture creates the table "
    "with metadata.create_all(config.db), a second checkout of the main engine, while the "
    "test's `connection` fixture holds the engine's one pooled connection (OneOwnerPool: "
    "pool_size=1, max_overflow=0), so the checkout times out. A second connection would "
    "take the database over and fence the first. On a SQLite file the pysqlite dialect's "
    "QueuePool opens a second connection and SQLite's file locks let both in.",
    ("ComponentReflectionTest", "test_metadata", "-True]"): "its use_schema=True variants "
    "reflect the 'test_schema' schema without requiring `schemas` (closed here: a sqlkv "
    "connection refuses to ATTACH the file that SQLAlchemy's SQLite provisioning attaches as "
    "test_schema), so they fail with 'no such table: test_schema.sqlite_master'; pysqlite "
    "fails them the same way without that attached file.",
}
"""Single tests excluded (beyond requirements), each with its reason; the README lists them."""


from sqlalchemy.testing.plugin import pytestplugin as _sqla_plugin  # noqa: E402
from sqlalchemy.testing.plugin.pytestplugin import *  # noqa: E402, F403


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """SQLAlchemy's own collection step (it makes one class per backend), then the
    exclusions of ``EXCLUDED_TESTS``."""
    _sqla_plugin.pytest_collection_modifyitems(session, config, items)
    if os.environ.get("SQLKV_SUITE_EXCLUSIONS") == "off":  # to re-check them: run them
        return
    for item in items:
        cls = item.cls.__name__.split("_sqlite")[0] if item.cls is not None else ""
        name = getattr(item, "originalname", item.name)
        reason = EXCLUDED_TESTS.get((cls, name))
        for key, why in EXCLUDED_TESTS.items():
            if len(key) == 3 and key[:2] == (cls, name) and key[2] in item.name:
                reason = why
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=f"sqlkv exclusion: {reason}"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """SQLAlchemy's own teardown step, after closing the main engine's pooled connections:
    a test that opened engines of its own (``testing_engine()``) took the database over,
    and the fixture teardowns that follow (a class's per-test row deletes, dropping
    tables) must not run on the main engine's fenced connection."""
    from sqlalchemy.testing import config

    if config.db is not None:
        config.db.dispose()
    yield from _sqla_plugin.pytest_runtest_teardown(item, nextitem)
