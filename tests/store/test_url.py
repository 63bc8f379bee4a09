"""Store URLs: every accepted form, and the common typos refused with a hint before
anything is created (``sqlkv.store.url.parse_store_url``, used by library and CLI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sqlkv.errors import ConfigError
from sqlkv.store import open_store
from sqlkv.store.url import parse_store_url


@pytest.mark.parametrize(
    ("url", "kind", "path", "name"),
    [
        ("./data", "embedded", "data", ""),
        ("/var/lib/sqlkv", "embedded", "/var/lib/sqlkv", ""),
        ("file:///var/lib/sqlkv", "embedded", "/var/lib/sqlkv", ""),
        ("file://localhost/var/lib/sqlkv", "embedded", "/var/lib/sqlkv", ""),
        ("lmdb:///var/lib/lm%20db", "lmdb", "/var/lib/lm db", ""),
        ("memory://", "memory", None, ""),
        ("memory://shared?latency_ms=20&jitter_ms=2", "memory", None, "shared"),
        ("postgresql://u:pw@host:5432/db", "postgresql", None, ""),
        ("postgres://host/db", "postgresql", None, ""),
    ],
)
def test_every_documented_form_parses(url: str, kind: str, path: str | None, name: str) -> None:
    parsed = parse_store_url(url)
    assert (parsed.kind, parsed.name) == (kind, name)
    assert parsed.path == (Path(path) if path else None)


def test_memory_latency_options_are_held_in_seconds() -> None:
    parsed = parse_store_url("memory://x?latency_ms=20&jitter_ms=2")
    assert parsed.options == {"latency_s": 0.02, "jitter_s": 0.002}


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("memory:/", "did you mean memory://?"),
        ("memory:", "did you mean memory://?"),
        ("memory://a/b", "cannot contain '/'"),
        ("memory://?latency=3", "unknown memory store option(s) ['latency']"),
        ("memory://?latency_ms=fast", "must be a number of milliseconds"),
        ("lmdb://relative", "like lmdb:///var/lib/sqlkv (three slashes)"),
        ("lmdb:relative", "need an absolute path"),
        ("file://relative/dir", "like file:///var/lib/sqlkv (three slashes)"),
        ("file:relative", "need an absolute path"),
        ("file:///x?mode=ro", "take no ?options"),
        ("postgresql:/db", "two slashes"),
        ("sqlkv://host:7878", "is an engine server URL, not a store"),
        ("memroy://", "unknown store URL scheme 'memroy'"),
        ("  ", "is empty"),
    ],
)
def test_typos_are_refused_with_a_hint(url: str, hint: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_store_url(url)
    assert hint in str(caught.value)


@pytest.mark.parametrize("url", ["memory:/", "lmdb://relative", "file://relative/dir"])
def test_open_store_refuses_typos_without_creating_anything(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError):
        open_store(url)
    assert os.listdir(tmp_path) == []
