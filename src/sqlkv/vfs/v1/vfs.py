"""The v1 apsw VFS, registered once per process as ``sqlkv-v1``.

``connect_v1`` *mounts* a database for each connection: the mount has a path of its own,
``/sqlkv-v1/{token}/db``, that SQLite opens as the main database; SQLite opens
``{path}-journal`` (and would open ``{path}-wal``) next to it. The database's name is
not in the path (names may be longer than SQLite's path limit). Paths name a file by role,
so the store keeps ``db``, ``journal`` and ``wal`` files (``keys.py``). Files SQLite
opens without a name (temporary databases, sorter spills) come from the default VFS;
any other path is refused.

The mounts of one database in this process share one ``DbState``: its files (sizes and
read caches) and its lock table. It lives while a connection has the database open, so
a database opened again after every connection closed starts with cold caches. One
process owns a v1 database at a time: nothing coordinates two processes.
"""

from __future__ import annotations

import itertools
import threading

import apsw

from sqlkv.store import Store
from sqlkv.vfs.v1.chunked import ChunkedFile
from sqlkv.vfs.v1.codes import sqlite_error
from sqlkv.vfs.v1.file import V1File, guarded
from sqlkv.vfs.v1.keys import FileKeys
from sqlkv.vfs.v1.locks import LockTable
from sqlkv.vfs.v1.stats import V1Stats

VFS_NAME = "sqlkv-v1"
ROOT = f"/{VFS_NAME}/"
_SUFFIXES = {"": "db", "-journal": "journal", "-wal": "wal"}


class DbState:
    """What this process knows of one v1 database while connections have it open."""

    def __init__(self, vfs: V1VFS, store: Store, name: str, cache_chunks: int) -> None:
        self.vfs = vfs
        self.store = store
        self.name = name
        self.cache_chunks = cache_chunks
        self.locks = LockTable()
        self.mounts = 0
        self.dead = False
        self._files: dict[str, ChunkedFile] = {}
        self._mutex = threading.Lock()

    def file(self, role: str) -> ChunkedFile:
        with self._mutex:
            if role not in self._files:
                self._files[role] = ChunkedFile(
                    self.store, FileKeys(self.name, role), self.cache_chunks
                )
            return self._files[role]

    def kill(self) -> None:
        """The process lost track of the store (crash, unknown outcome): drop everything.

        Locks go as a dead process's would; open connections fail from now on; the next
        connection builds a new state from the store.
        """
        self.dead = True
        self.locks = LockTable()
        for f in list(self._files.values()):
            f.invalidate()
        self.vfs._forget(self)


class Mount:
    """One connection's view of a database: its path and its counters."""

    def __init__(self, vfs: V1VFS, token: str, db: DbState) -> None:
        self.vfs = vfs
        self.token = token
        self.db = db
        self.stats = V1Stats()
        self.path = f"{ROOT}{token}/db"
        self.closed = False

    def close(self) -> None:
        self.vfs._unmount(self)


class V1VFS(apsw.VFS):
    """Serves mounted v1 databases to SQLite; see the module docstring."""

    def __init__(self) -> None:
        super().__init__(VFS_NAME, base="")
        self._mounts: dict[str, Mount] = {}
        self._dbs: dict[tuple[int, str], DbState] = {}
        self._tokens = itertools.count(1)
        self._mutex = threading.Lock()

    # ------------------------------------------------------------------ mounts

    def mount(self, store: Store, name: str, *, cache_chunks: int) -> Mount:
        """A new mount of database ``name`` of ``store``; SQLite opens ``mount.path``."""
        FileKeys(name, "db")  # validates the name
        with self._mutex:
            db = self._dbs.get((id(store), name))
            if db is None:
                db = self._dbs[(id(store), name)] = DbState(self, store, name, cache_chunks)
            db.mounts += 1
            mount = Mount(self, str(next(self._tokens)), db)
            self._mounts[mount.token] = mount
            return mount

    def _unmount(self, mount: Mount) -> None:
        with self._mutex:
            if mount.closed:
                return
            mount.closed = True
            del self._mounts[mount.token]
            db = mount.db
            db.mounts -= 1
            if db.mounts == 0 and self._dbs.get((id(db.store), db.name)) is db:
                del self._dbs[(id(db.store), db.name)]

    def _forget(self, db: DbState) -> None:
        with self._mutex:
            if self._dbs.get((id(db.store), db.name)) is db:
                del self._dbs[(id(db.store), db.name)]

    def resolve(self, path: str) -> tuple[Mount, str] | None:
        """The mount and file role of one of our paths, or None when it is not ours."""
        if not path.startswith(ROOT):
            return None
        token = path[len(ROOT) :].split("/", 1)[0]
        mount = self._mounts.get(token)
        if mount is None or not path.startswith(mount.path):
            return None
        role = _SUFFIXES.get(path[len(mount.path) :])
        return None if role is None else (mount, role)

    def _resolve_or_fail(self, path: str, code: int) -> tuple[Mount, str]:
        found = self.resolve(path)
        if found is None:
            raise sqlite_error(
                code,
                f"{path!r} is not a file of a mounted v1 database; open databases with "
                "sqlkv.vfs.v1.connect_v1",
            )
        return found

    # ------------------------------------------------------------------ VFS methods

    def xOpen(  # type: ignore[override]  # apsw takes any object with the file methods
        self, name: str | apsw.URIFilename | None, flags: list[int]
    ) -> object:
        if name is None:
            return apsw.VFSFile("", name, flags)
        path = name.filename() if isinstance(name, apsw.URIFilename) else name
        mount, role = self._resolve_or_fail(path, apsw.SQLITE_CANTOPEN)
        if not flags[0] & apsw.SQLITE_OPEN_CREATE:
            exists = guarded(
                mount,
                apsw.SQLITE_CANTOPEN,
                "open",
                lambda: mount.db.file(role).exists(mount.stats),
            )
            if not exists:
                raise sqlite_error(
                    apsw.SQLITE_CANTOPEN, f"v1 database {mount.db.name!r} has no {role} file"
                )
        flags[1] = flags[0]
        return V1File(mount, role)

    def xDelete(self, filename: str, syncdir: bool) -> None:
        mount, role = self._resolve_or_fail(filename, apsw.SQLITE_IOERR_DELETE)
        guarded(
            mount,
            apsw.SQLITE_IOERR_DELETE,
            "delete",
            lambda: mount.db.file(role).delete(mount.stats),
        )

    def xAccess(self, pathname: str, flags: int) -> bool:
        found = self.resolve(pathname)
        if found is None:
            return False
        mount, role = found
        return guarded(
            mount,
            apsw.SQLITE_IOERR_ACCESS,
            "access",
            lambda: mount.db.file(role).exists(mount.stats),
        )

    def xFullPathname(self, name: str) -> str:
        return name


_vfs: V1VFS | None = None
_vfs_lock = threading.Lock()


def get_vfs() -> V1VFS:
    """The process's v1 VFS, registered with SQLite on first use."""
    global _vfs
    with _vfs_lock:
        if _vfs is None:
            _vfs = V1VFS()
        return _vfs
