"""What bounds the server's memory for request frames: the pre-authentication frame cap,
the server-wide frame budget, and a body reader that never holds a frame twice.

- ``PREAUTH_MAX_FRAME``: until HELLO succeeds a frame may be at most this long (HELLO with
  a long token and HEALTH are well under it); the server checks the length prefix and
  closes the connection before reading a byte of a longer frame.
- ``FrameBudget``: bytes of request frames held at once, over all connections of one
  server process. A frame reserves its length before its body is read and releases it
  once its answer is sent; a frame that does not fit waits for others to finish (first
  come, first served), so its sender sees TCP back-pressure instead of the server
  growing. Thread-safe: authenticated connections are served on threads (``session.py``).
- ``read_preauth_frame``: the next frame before HELLO, refused on its length prefix when
  over the pre-authentication cap, and all of it within the hello deadline.
- ``read_body``: reads a pre-authentication frame's body from the event loop's stream into
  one buffer of its final size, piece by piece, instead of ``readexactly``, which holds
  the whole frame in the stream buffer and then copies it.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass

from sqlkv.errors import ProtocolError
from sqlkv.server.protocol import LENGTH, check_length

PREAUTH_MAX_FRAME = 4 * 1024
DEFAULT_FRAME_BUDGET = 256 * 1024 * 1024
READ_PIECE = 1 << 20


class FrameBudget:
    """A byte semaphore shared by the threads of one server, granting in arrival order."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._cond = threading.Condition()
        self._waiters: deque[list[int]] = deque()

    def acquire(self, n: int, timeout: float | None = None) -> bool:
        """Reserve ``n`` bytes (``n <= limit``), waiting behind earlier waiters; False (and
        nothing reserved) when ``timeout`` seconds pass first."""
        with self._cond:
            if not self._waiters and self.used + n <= self.limit:
                self.used += n
                return True
            entry = [n]  # identity marks this waiter's place in the queue
            self._waiters.append(entry)
            try:
                granted = self._cond.wait_for(
                    lambda: self._waiters[0] is entry and self.used + n <= self.limit, timeout
                )
                if granted:
                    self.used += n
                return granted
            finally:
                self._waiters.remove(entry)
                self._cond.notify_all()

    def release(self, n: int) -> None:
        if n:
            with self._cond:
                self.used -= n
                self._cond.notify_all()


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


@dataclass(frozen=True)
class Refused:
    """Why a pre-authentication frame was not read (a ``frame_rejects`` reason), and the
    error to answer with before closing, if any."""

    reason: str
    answer: ProtocolError | None = None


async def read_preauth_frame(
    reader: asyncio.StreamReader, seconds_left: float, limit: int
) -> bytearray | Refused | None:
    """The next frame's payload before HELLO; None at a clean end of stream."""
    try:
        prefix = await asyncio.wait_for(reader.readexactly(LENGTH.size), max(0.0, seconds_left))
    except asyncio.IncompleteReadError as exc:
        return Refused("truncated") if exc.partial else None
    except TimeoutError:
        return Refused("hello_timeout")
    (length,) = LENGTH.unpack(prefix)
    try:
        check_length(length, limit)
    except ProtocolError as exc:
        if length < limit:
            return Refused("short", exc)
        return Refused(
            "preauth_oversized",
            ProtocolError(
                f"frame of {length} bytes before HELLO; until a HELLO succeeds a frame "
                f"may be at most {limit} bytes: send HELLO first"
            ),
        )
    try:
        return await asyncio.wait_for(read_body(reader, length), max(0.0, seconds_left))
    except (asyncio.IncompleteReadError, TimeoutError):
        return Refused("truncated")
