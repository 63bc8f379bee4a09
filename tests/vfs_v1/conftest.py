"""Fixtures of the v1 VFS tests: its file objects opened directly, without SQLite."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import apsw
import pytest

from sqlkv.store import Store
from sqlkv.vfs.v1.file import V1File
from sqlkv.vfs.v1.vfs import Mount, get_vfs

FileOpener = Callable[..., V1File]
_ROLE_SUFFIX = {"db": "", "journal": "-journal"}
_ROLE_FLAG = {"db": apsw.SQLITE_OPEN_MAIN_DB, "journal": apsw.SQLITE_OPEN_MAIN_JOURNAL}


@pytest.fixture
def open_file() -> Iterator[FileOpener]:
    """``open_file(store, name="t", role="db", cache_chunks=64)``: a V1File, as SQLite gets it.

    Each call is a new mount (a new connection's view). Everything opened is closed at
    the end of the test.
    """
    opened: list[tuple[Mount, V1File]] = []

    def opener(store: Store, name: str = "t", role: str = "db", cache_chunks: int = 64) -> V1File:
        vfs = get_vfs()
        mount = vfs.mount(store, name, cache_chunks=cache_chunks)
        flags = apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE | _ROLE_FLAG[role]
        file = vfs.xOpen(mount.path + _ROLE_SUFFIX[role], [flags, 0])
        assert isinstance(file, V1File)
        opened.append((mount, file))
        return file

    yield opener
    for mount, file in reversed(opened):
        file.xClose()
        mount.close()
