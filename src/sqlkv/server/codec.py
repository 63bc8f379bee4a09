"""Field encoding of the network protocol: a ``Writer`` and a ``Reader`` over big-endian
``struct`` fields, and nothing else (no pickle, no eval: a frame is only ever parsed).

Field kinds, shared by every message (``protocol.py`` lists which message has which):

- ``u8``, ``u16``, ``u32``, ``u64``: unsigned big-endian integers;
- ``opt_u64``: a presence byte (0 or 1) then, when present, a ``u64``;
- ``string``: a ``u16`` byte length then UTF-8 (database names, server names);
- ``text``: a ``u32`` byte length then UTF-8 (error messages);
- ``blob``: a ``u32`` byte length then the bytes;
- ``head``: a ``u16`` byte length then ``Head.encode()``;
- ``pgnos``: a ``u32`` count then that many ``u32`` page numbers;
- ``pages``: a ``u32`` count then, per page, ``u32`` pgno, ``u32`` length and the bytes; the
  length ``0xFFFFFFFF`` (``ABSENT``) stands for ``None`` (a page above the database size).

The ``Reader`` checks every length against the bytes that remain *before* it allocates or
slices, so a hostile count can never make it reserve more memory than the frame holds, and
raises ``ProtocolError`` for anything truncated, malformed or left over.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping

from sqlkv.engine.head import Head
from sqlkv.errors import EngineError, ProtocolError

ABSENT = 0xFFFFFFFF

_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_PAGE = struct.Struct(">II")


class Writer:
    """Builds one message body: call the field methods in the message's order."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def u8(self, value: int) -> Writer:
        self._parts.append(_U8.pack(value))
        return self

    def u16(self, value: int) -> Writer:
        self._parts.append(_U16.pack(value))
        return self

    def u32(self, value: int) -> Writer:
        self._parts.append(_U32.pack(value))
        return self

    def u64(self, value: int) -> Writer:
        self._parts.append(_U64.pack(value))
        return self

    def opt_u64(self, value: int | None) -> Writer:
        if value is None:
            return self.u8(0)
        return self.u8(1).u64(value)

    def raw(self, data: bytes) -> Writer:
        self._parts.append(data)
        return self

    def string(self, value: str) -> Writer:
        data = value.encode("utf-8")
        if len(data) > 0xFFFF:
            raise ProtocolError(f"string of {len(data)} bytes is too long for the protocol")
        return self.u16(len(data)).raw(data)

    def text(self, value: str) -> Writer:
        return self.blob(value.encode("utf-8", "replace"))

    def blob(self, data: bytes) -> Writer:
        return self.u32(len(data)).raw(bytes(data))

    def head(self, head: Head) -> Writer:
        data = head.encode()
        return self.u16(len(data)).raw(data)

    def pgnos(self, pgnos: Iterable[int]) -> Writer:
        values = list(pgnos)
        self.u32(len(values))
        self._parts.append(struct.pack(f">{len(values)}I", *values))
        return self

    def pages(self, pages: Mapping[int, bytes | None]) -> Writer:
        self.u32(len(pages))
        for pgno, data in pages.items():
            if data is None:
                self._parts.append(_PAGE.pack(pgno, ABSENT))
            else:
                self._parts.append(_PAGE.pack(pgno, len(data)))
                self._parts.append(bytes(data))
        return self

    def getvalue(self) -> bytes:
        return b"".join(self._parts)


class Reader:
    """Parses one message body; every method raises ``ProtocolError`` on bad input."""

    def __init__(self, data: bytes | memoryview) -> None:
        self._data = memoryview(data)
        self._len = len(self._data)
        self._pos = 0

    @property
    def remaining(self) -> int:
        return self._len - self._pos

    def _take(self, n: int) -> memoryview:
        pos = self._pos
        end = pos + n
        if n < 0 or end > self._len:
            raise ProtocolError(
                f"message truncated: a field needs {n} bytes, {self.remaining} remain"
            )
        self._pos = end
        return self._data[pos:end]

    def _unpack(self, st: struct.Struct) -> int:
        pos = self._pos
        end = pos + st.size
        if end > self._len:
            raise ProtocolError(
                f"message truncated: a field needs {st.size} bytes, {self.remaining} remain"
            )
        self._pos = end
        return int(st.unpack_from(self._data, pos)[0])

    def u8(self) -> int:
        return self._unpack(_U8)

    def u16(self) -> int:
        return self._unpack(_U16)

    def u32(self) -> int:
        return self._unpack(_U32)

    def u64(self) -> int:
        return self._unpack(_U64)

    def flag(self) -> bool:
        value = self.u8()
        if value > 1:
            raise ProtocolError(f"a flag byte must be 0 or 1, got {value}")
        return value == 1

    def opt_u64(self) -> int | None:
        return self.u64() if self.flag() else None

    def raw(self, n: int) -> bytes:
        return bytes(self._take(n))

    def string(self) -> str:
        return _utf8(self._take(self.u16()))

    def text(self) -> str:
        return _utf8(self._take(self.u32()))

    def blob(self) -> bytes:
        return bytes(self._take(self.u32()))

    def head(self) -> Head:
        data = bytes(self._take(self.u16()))
        try:
            return Head.decode(data)
        except EngineError as exc:
            raise ProtocolError(f"malformed head record in message: {exc}") from None

    def pgnos(self) -> list[int]:
        count = self.u32()
        if count * 4 > self.remaining:
            raise ProtocolError(f"message truncated: {count} page numbers do not fit")
        return list(struct.unpack(f">{count}I", self._take(count * 4)))

    def pages(self) -> dict[int, bytes | None]:
        count = self.u32()
        if count * _PAGE.size > self.remaining:
            raise ProtocolError(f"message truncated: {count} pages do not fit")
        out: dict[int, bytes | None] = {}
        data, pos, size = self._data, self._pos, self._len
        unpack = _PAGE.unpack_from
        for _ in range(count):
            if pos + _PAGE.size > size:
                self._pos = pos
                self._take(_PAGE.size)  # raises: truncated
            pgno, length = unpack(data, pos)
            pos += _PAGE.size
            if pgno in out:
                raise ProtocolError(f"page {pgno} appears twice in one message")
            if length == ABSENT:
                out[pgno] = None
                continue
            if pos + length > size:
                self._pos = pos
                self._take(length)  # raises: truncated
            out[pgno] = bytes(data[pos : pos + length])
            pos += length
        self._pos = pos
        return out

    def present_pages(self) -> dict[int, bytes]:
        pages = self.pages()
        if any(v is None for v in pages.values()):
            raise ProtocolError("a page sent to the engine must have a body")
        return {k: v for k, v in pages.items() if v is not None}

    def skip_rest(self) -> None:
        self._pos = len(self._data)

    def done(self) -> None:
        if self.remaining:
            raise ProtocolError(f"message has {self.remaining} unexpected trailing bytes")


def _utf8(data: memoryview) -> str:
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("a string field is not valid UTF-8") from None
