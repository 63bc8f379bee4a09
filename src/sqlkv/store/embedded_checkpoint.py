"""Checkpoints of the embedded store's WAL, on a background thread.

Checkpoints (copying the WAL back into the file) run on a thread of their own once the WAL
holds ``checkpoint_bytes`` (16 MiB), in two passes (``_Checkpointer``), so that commits do
not wait for them and the WAL stays bounded (truncated to 32 MiB after a reset). A
snapshot held open for long makes the WAL grow meanwhile; it shrinks back afterwards.
``Checkpoints.wal_hook`` replaces SQLite's autocheckpoint on every connection of the store.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path

import apsw

CHECKPOINT_BYTES = 16 * 1024 * 1024  # WAL size that wakes the background checkpointer


class Checkpoints:
    """Counts the WAL's frames after each commit and wakes the checkpointer past ``frames``.

    ``connect``: opens the checkpointer's own connection (synchronous set as the store's);
    ``write_lock``: the store's lock around commits; ``closed``: True once the store closes.
    """

    def __init__(
        self,
        path: Path,
        *,
        connect: Callable[[], apsw.Connection],
        frames: int,
        write_lock: threading.Lock,
        closed: Callable[[], bool],
    ) -> None:
        self.path = path
        self.connect = connect
        self.write_lock = write_lock
        self.closed = closed
        self.wal_frames = 0  # frames in the WAL after this store's last commit
        # Bumped by each checkpoint that copied the whole WAL back: a snapshot begun before
        # it must not become its commit's write transaction, because only a write
        # transaction that began after it starts the WAL over (embedded.py).
        self.completed = 0
        self._frames = frames
        self._thread: _Checkpointer | None = None

    def wal_hook(self, conn: apsw.Connection, name: str, frames: int) -> int:
        """After each commit (in place of SQLite's autocheckpoint): wake the checkpointer."""
        self.wal_frames = frames
        if frames >= self._frames and not self.closed():
            if self._thread is None:
                self._thread = _Checkpointer(self)
                self._thread.start()
            self._thread.wake()
        return int(apsw.SQLITE_OK)

    def stop(self) -> None:
        """End the checkpointer thread, if one was started (the store is closing)."""
        if self._thread is not None:
            self._thread.stop()


class _Checkpointer(threading.Thread):
    """Checkpoints on its own connection when a commit wakes it, in two passes.

    A PASSIVE checkpoint never blocks writers or readers; it copies back what no open
    snapshot still needs. But it only *completes* (and lets the next commit start the
    WAL over from its beginning) if no commit lands while it runs: under a steady stream
    of commits the WAL would grow without end. So the bulk is copied beside the commits,
    then the rest (what was committed meanwhile: little) under this store's write lock.
    """

    def __init__(self, owner: Checkpoints) -> None:
        super().__init__(name=f"sqlkv-checkpoint {owner.path}", daemon=True)
        self._owner = owner
        self._wake = threading.Event()
        self._stopping = False

    def wake(self) -> None:
        if not self._wake.is_set():  # every commit past the threshold calls this
            self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        self.join()

    def run(self) -> None:
        owner = self._owner
        conn = owner.connect()
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                # Busy: another process is checkpointing; the next commit wakes us again.
                # Other errors (I/O, disk full) reach the commits themselves.
                with contextlib.suppress(apsw.Error):
                    log, copied = conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_PASSIVE)
                    if owner.wal_frames > copied:  # our commits landed meanwhile
                        with owner.write_lock:
                            if not owner.closed():
                                log, copied = conn.wal_checkpoint(
                                    mode=apsw.SQLITE_CHECKPOINT_PASSIVE
                                )
                    if copied >= log:
                        owner.completed += 1
        finally:
            conn.close()
