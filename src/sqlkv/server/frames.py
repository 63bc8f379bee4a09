"""What bounds the server's memory for request frames: the pre-authentication frame cap,
the server-wide frame budget, and a body reader that never holds a frame twice.

- ``PREAUTH_MAX_FRAME``: until HELLO succeeds a frame may be at most this long (HELLO with
  a long token and HEALTH are well under it); the server checks the length prefix and
  closes the connection before reading a byte of a longer frame.
- ``FrameBudget``: bytes of request frames held at once, over all connections. A frame
  reserves its length before its body is read and releases it once its answer is sent; a
  frame that does not fit waits for others to finish (first come, first served), so its
  sender sees TCP back-pressure instead of the server growing.
- ``read_body``: reads a frame's body into one buffer of its final size, piece by piece
  (the stream's own buffer stays at its small limit), instead of ``readexactly``, which
  holds the whole frame in the stream buffer and then copies it.
"""

from __future__ import annotations

import asyncio
from collections import deque

PREAUTH_MAX_FRAME = 4 * 1024
DEFAULT_FRAME_BUDGET = 256 * 1024 * 1024
READ_PIECE = 1 << 20


class FrameBudget:
    """A byte semaphore for one event loop (not thread-safe: loop code only)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def acquire(self, n: int) -> None:
        """Reserve ``n`` bytes (``n <= limit``), waiting for them in arrival order."""
        if not self._waiters and self.used + n <= self.limit:
            self.used += n
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (n, future)
        self._waiters.append(entry)
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled():
                self.release(n)  # granted while we were being cancelled: give it back
            else:
                self._waiters.remove(entry)
                self._wake()
            raise

    def release(self, n: int) -> None:
        if n:
            self.used -= n
            self._wake()

    def _wake(self) -> None:
        while self._waiters:
            n, future = self._waiters[0]
            if future.cancelled():
                self._waiters.popleft()
                continue
            if self.used + n > self.limit:
                return
            self._waiters.popleft()
            self.used += n
            future.set_result(None)


async def read_body(reader: asyncio.StreamReader, length: int) -> bytearray:
    """Exactly ``length`` bytes from ``reader``; ``IncompleteReadError`` if it ends first."""
    buf = bytearray(length)
    view = memoryview(buf)
    got = 0
    try:
        while got < length:
            piece = await reader.read(min(length - got, READ_PIECE))
            if not piece:
                raise asyncio.IncompleteReadError(bytes(view[:got]), length)
            view[got : got + len(piece)] = piece
            got += len(piece)
    finally:
        view.release()
    return buf
