"""The database-name rule (``sqlkv.keyspace.check_database_name``): what it allows, and
that the library (``sqlkv.connect``, v2 and v1) and every engine operation refuse the
rest with ``InvalidDatabaseName`` before anything is written. The command line and the
server are tested in tests/cli and tests/server."""

from __future__ import annotations

import pytest

import sqlkv
from sqlkv.engine import Engine
from sqlkv.errors import ConfigError, InvalidDatabaseName
from sqlkv.keyspace import MAX_NAME_BYTES, check_database_name
from sqlkv.store import MemoryStore

VALID = ["orders", "tenant-42", "a b", "a.b", "ÿ", "日本語", "x" * MAX_NAME_BYTES, "..a"]
INVALID = {
    "": "it is empty",
    "x" * (MAX_NAME_BYTES + 1): "it is 256 bytes long",
    "é" * 128: "it is 256 bytes long",
    "a\nb": "it contains the unprintable character U+000A",
    "a\x00b": "it contains the unprintable character U+0000",
    "a\x1bb": "it contains the unprintable character U+001B",
    "a\u202eb": "it contains the unprintable character U+202E",  # bidi override: look-alike names
    "a\u200bb": "it contains the unprintable character U+200B",  # zero width space
    "a\u00a0": "it contains the unprintable character U+00A0",  # no-break space
    "../etc": "it contains '/'",
    "a/b": "it contains '/'",
    "a\\b": "it contains '\\\\'",
    ".": "it is a path component",
    "..": "it is a path component",
    " ": "it starts or ends with a space",
    " a": "it starts or ends with a space",
    "a ": "it starts or ends with a space",
}


@pytest.mark.parametrize("name", VALID)
def test_valid_names_pass(name: str) -> None:
    assert check_database_name(name) == name


@pytest.mark.parametrize(("name", "reason"), INVALID.items())
def test_invalid_names_say_which_part_of_the_rule_they_break(name: str, reason: str) -> None:
    with pytest.raises(InvalidDatabaseName) as caught:
        check_database_name(name)
    message = str(caught.value)
    assert message.startswith(f"invalid database name {name!r}: {reason}; ")
    assert "1 to 255 bytes (UTF-8) of printable characters" in message
    assert isinstance(caught.value, ConfigError)


@pytest.mark.parametrize("name", ["../etc", "a/b", " ", "a\nb", "a\x00b"])
def test_every_engine_operation_refuses_invalid_names(name: str) -> None:
    store = MemoryStore()
    engine = Engine(store)
    calls = [
        lambda: engine.open(name),
        lambda: engine.head(name),
        lambda: engine.get_pages(name, 1, [1]),
        lambda: engine.commit(name, 1, 0, {1: bytes(4096)}, 1),
        lambda: engine.commit_stage(name, 1, None, 0, {1: bytes(4096)}),
        lambda: engine.commit_finalize(name, 1, 0, 1, 1),
        lambda: engine.compact(name),
    ]
    for call in calls:
        with pytest.raises(InvalidDatabaseName):
            call()
    assert store.dump() == {}


@pytest.mark.parametrize("fmt", ["v2", "v1"])
def test_sqlkv_connect_refuses_invalid_names_before_opening_anything(fmt: str) -> None:
    store = MemoryStore()
    with pytest.raises(InvalidDatabaseName, match=r"invalid database name '\.\./etc'"):
        sqlkv.connect("../etc", store, format=fmt)
    assert store.dump() == {}
    conn = sqlkv.connect("a valid name", store, format=fmt)
    conn.execute("CREATE TABLE t(x)")
    conn.close()
