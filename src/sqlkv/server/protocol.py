"""The sqlkv network protocol, version 1: frames, message types and their schemas.

Frame (every message, both directions)::

    u32 length        bytes that follow (header + fields); at most the negotiated max
                      frame size (64 MiB by default); a larger length is refused unread
    u8  type          MsgType; an answer is the request's type | 0x80, or ERROR (0xFF)
    u32 request_id    chosen by the client, echoed by the answer
    ...fields         in the order the schema below gives (kinds: ``codec.py``)

The frame and header layout never changes between versions, so two peers can always
exchange HELLO. A connection starts with ``HELLO`` (magic ``SQKV``, the client's lowest and
highest version, its token, its name); the server answers ``HELLO`` with the version it
chose (the highest both speak), its max frame size and its name, or with ERROR
(``ProtocolError`` for no common version, ``AuthError`` for a refused token) and closes.
``HEALTH`` needs no HELLO (load balancers probe with it); every other request before a
successful HELLO is a protocol error.

Requests and their answers (``->``)::

    HELLO            magic[4] u16 min_version u16 max_version blob token string client
                     -> u16 version u32 max_frame string server
    HEALTH           (nothing) -> u8 draining u32 inflight u32 connections string server
    OPEN             string db pgnos preload opt_u64 preload_bytes u8 create
                     -> head pages                       (OpenResult)
    GET_PAGES        string db u64 generation pgnos -> head pages (absent = None)
    COMMIT           string db u64 generation u64 expected_head_txid u64 db_size_pages
                     opt_id commit_id pages -> head u8 already_applied
    COMMIT_STAGE     string db u64 generation opt_u64 txid u32 seq pages -> u64 txid u32 parts
    COMMIT_FINALIZE  string db u64 generation u64 expected_head_txid u64 txid
                     u64 db_size_pages opt_id commit_id -> head u8 already_applied
    HEAD             string db -> head
    SNAPSHOT         string db opt_u64 at pgnos preload -> u64 txid u32 db_size_pages head pages
    READ_AT          string db u64 txid pgnos -> head pages (absent = None)
    CHANGES_SINCE    string db u64 txid -> u64 txid u32 db_size_pages head u8 known
                     [pgnos changed, when known]
    RESOLVE          string db u8 kind (0 txid: u64 | 1 time: string ISO 8601 with offset |
                     2 label: string) -> u64 txid
    HISTORY          string db opt_u64 limit -> u32 n, n x (u64 txid u64 committed_ms
                     u32 db_size_pages u16 labels, labels x string)
    LABEL            string db string label opt_u64 txid -> u64 txid
    SET_RETENTION    string db u64 window_ms -> u64 window_ms
    RETENTION        string db -> u64 window_ms
    SAVE_HINT        string db u64 generation pgnos -> head   (docs/open-and-preload.md)
    ERROR            u16 code text message ...class fields   (``codes.py``)

``opt_id`` is a presence byte then a ``u16``-length byte string (16 bytes for a valid
commit id; the engine checks). One request is one engine call: the protocol adds no round
trips of its own beyond the HELLO at connect.
"""

from __future__ import annotations

import struct
from datetime import datetime

from sqlkv.engine.api import (
    ChangesResult,
    CommitResult,
    HistoryEntry,
    OpenResult,
    PagesResult,
    SnapshotResult,
    StageResult,
)
from sqlkv.engine.head import Head
from sqlkv.errors import InvalidRequest, ProtocolError
from sqlkv.server.codec import Reader, Writer
from sqlkv.server.codes import read_error, write_error
from sqlkv.server.messages import (
    MAGIC as MAGIC,
)
from sqlkv.server.messages import (
    MIN_PROTOCOL_VERSION as MIN_PROTOCOL_VERSION,
)
from sqlkv.server.messages import (
    PROTOCOL_VERSION as PROTOCOL_VERSION,
)
from sqlkv.server.messages import (
    REQUEST_TYPE as REQUEST_TYPE,
)
from sqlkv.server.messages import (
    REQUEST_TYPES as REQUEST_TYPES,
)
from sqlkv.server.messages import (  # re-exported: the protocol's public names
    Answer as Answer,
)
from sqlkv.server.messages import (
    ChangesRequest as ChangesRequest,
)
from sqlkv.server.messages import (
    CommitRequest as CommitRequest,
)
from sqlkv.server.messages import (
    FinalizeRequest as FinalizeRequest,
)
from sqlkv.server.messages import (
    GetPagesRequest as GetPagesRequest,
)
from sqlkv.server.messages import (
    HeadRequest as HeadRequest,
)
from sqlkv.server.messages import (
    Health as Health,
)
from sqlkv.server.messages import (
    HealthOk as HealthOk,
)
from sqlkv.server.messages import (
    Hello as Hello,
)
from sqlkv.server.messages import (
    HelloOk as HelloOk,
)
from sqlkv.server.messages import (
    HistoryAnswer as HistoryAnswer,
)
from sqlkv.server.messages import (
    HistoryRequest as HistoryRequest,
)
from sqlkv.server.messages import (
    LabelRequest as LabelRequest,
)
from sqlkv.server.messages import (
    MsgType as MsgType,
)
from sqlkv.server.messages import (
    OpenRequest as OpenRequest,
)
from sqlkv.server.messages import (
    ReadAtRequest as ReadAtRequest,
)
from sqlkv.server.messages import (
    Request as Request,
)
from sqlkv.server.messages import (
    ResolveRequest as ResolveRequest,
)
from sqlkv.server.messages import (
    RetentionAnswer as RetentionAnswer,
)
from sqlkv.server.messages import (
    RetentionRequest as RetentionRequest,
)
from sqlkv.server.messages import (
    SaveHintRequest as SaveHintRequest,
)
from sqlkv.server.messages import (
    SetRetentionRequest as SetRetentionRequest,
)
from sqlkv.server.messages import (
    SnapshotRequest as SnapshotRequest,
)
from sqlkv.server.messages import (
    StageRequest as StageRequest,
)
from sqlkv.server.messages import (
    TxidAnswer as TxidAnswer,
)
from sqlkv.server.messages import (
    database_of as database_of,
)

DEFAULT_MAX_FRAME = 64 * 1024 * 1024
LENGTH = struct.Struct(">I")
HEADER = struct.Struct(">BI")  # message type, request id
ANSWER_BIT = 0x80


# --------------------------------------------------------------------------- frames


def frame(msg_type: int, request_id: int, body: bytes) -> bytes:
    """One whole frame: length, header, body."""
    return LENGTH.pack(HEADER.size + len(body)) + HEADER.pack(msg_type, request_id) + body


def split_header(payload: bytes | bytearray) -> tuple[int, int, memoryview]:
    """(type, request_id, body) of a frame's payload (the bytes after the length)."""
    if len(payload) < HEADER.size:
        raise ProtocolError(f"frame of {len(payload)} bytes is shorter than its header")
    msg_type, request_id = HEADER.unpack_from(payload)
    return msg_type, request_id, memoryview(payload)[HEADER.size :]


def check_length(length: int, max_frame: int) -> None:
    if length < HEADER.size:
        raise ProtocolError(f"frame length {length} is shorter than the {HEADER.size}-byte header")
    if length > max_frame:
        raise ProtocolError(
            f"frame of {length} bytes is over the maximum frame size of {max_frame} bytes"
        )


# --------------------------------------------------------------------------- requests


def encode_request(request_id: int, request: Request) -> bytes:
    """The frame of ``request``; ``InvalidRequest`` for a field the wire cannot carry."""
    w = Writer()
    try:
        _write_request(w, request)
    except struct.error as exc:
        raise InvalidRequest(f"a field of the request is out of range: {exc}") from None
    return frame(REQUEST_TYPE[type(request)], request_id, w.getvalue())


def _write_request(w: Writer, m: Request) -> None:
    if isinstance(m, Hello):
        w.raw(m.magic).u16(m.min_version).u16(m.max_version).blob(m.token).string(m.client)
    elif isinstance(m, Health):
        pass
    elif isinstance(m, OpenRequest):
        w.string(m.db).pgnos(m.preload).opt_u64(m.preload_bytes).u8(int(m.create))
    elif isinstance(m, GetPagesRequest):
        w.string(m.db).u64(m.generation).pgnos(m.pgnos)
    elif isinstance(m, CommitRequest):
        w.string(m.db).u64(m.generation).u64(m.expected_head_txid).u64(m.db_size_pages)
        _write_id(w, m.commit_id)
        w.pages(m.pages)
    elif isinstance(m, StageRequest):
        w.string(m.db).u64(m.generation).opt_u64(m.txid).u32(m.seq).pages(m.pages)
    elif isinstance(m, FinalizeRequest):
        w.string(m.db).u64(m.generation).u64(m.expected_head_txid).u64(m.txid)
        w.u64(m.db_size_pages)
        _write_id(w, m.commit_id)
    elif isinstance(m, HeadRequest):
        w.string(m.db)
    elif isinstance(m, SnapshotRequest):
        w.string(m.db).opt_u64(m.at).pgnos(m.preload)
    elif isinstance(m, ReadAtRequest):
        w.string(m.db).u64(m.txid).pgnos(m.pgnos)
    elif isinstance(m, ChangesRequest):
        w.string(m.db).u64(m.txid)
    elif isinstance(m, ResolveRequest):
        w.string(m.db)
        if isinstance(m.at, datetime):
            if m.at.tzinfo is None:
                raise InvalidRequest(f"time {m.at.isoformat()} has no timezone")
            w.u8(1).string(m.at.isoformat())
        elif isinstance(m.at, str):
            w.u8(2).string(m.at)
        else:
            w.u8(0).u64(m.at)
    elif isinstance(m, HistoryRequest):
        w.string(m.db).opt_u64(m.limit)
    elif isinstance(m, LabelRequest):
        w.string(m.db).string(m.label).opt_u64(m.txid)
    elif isinstance(m, SetRetentionRequest):
        w.string(m.db).u64(m.window_ms)
    elif isinstance(m, RetentionRequest):
        w.string(m.db)
    elif isinstance(m, SaveHintRequest):
        w.string(m.db).u64(m.generation).pgnos(m.pgnos)
    else:  # pragma: no cover - the union is closed
        raise TypeError(f"not a request: {m!r}")


def decode_request(msg_type: int, body: bytes | memoryview) -> Request:
    """The request in a frame's body; ``ProtocolError`` when it is not a valid one."""
    r = Reader(body)
    m: Request
    if msg_type == MsgType.HELLO:
        m = Hello(
            magic=r.raw(4),
            min_version=r.u16(),
            max_version=r.u16(),
            token=r.blob(),
            client=r.string(),
        )
    elif msg_type == MsgType.HEALTH:
        m = Health()
    elif msg_type == MsgType.OPEN:
        m = OpenRequest(r.string(), tuple(r.pgnos()), r.opt_u64(), r.flag())
    elif msg_type == MsgType.GET_PAGES:
        m = GetPagesRequest(r.string(), r.u64(), tuple(r.pgnos()))
    elif msg_type == MsgType.COMMIT:
        m = CommitRequest(r.string(), r.u64(), r.u64(), r.u64(), _read_id(r), r.present_pages())
    elif msg_type == MsgType.COMMIT_STAGE:
        m = StageRequest(r.string(), r.u64(), r.opt_u64(), r.u32(), r.present_pages())
    elif msg_type == MsgType.COMMIT_FINALIZE:
        m = FinalizeRequest(r.string(), r.u64(), r.u64(), r.u64(), r.u64(), _read_id(r))
    elif msg_type == MsgType.HEAD:
        m = HeadRequest(r.string())
    elif msg_type == MsgType.SNAPSHOT:
        m = SnapshotRequest(r.string(), r.opt_u64(), tuple(r.pgnos()))
    elif msg_type == MsgType.READ_AT:
        m = ReadAtRequest(r.string(), r.u64(), tuple(r.pgnos()))
    elif msg_type == MsgType.CHANGES_SINCE:
        m = ChangesRequest(r.string(), r.u64())
    elif msg_type == MsgType.RESOLVE:
        m = ResolveRequest(r.string(), _read_at(r))
    elif msg_type == MsgType.HISTORY:
        m = HistoryRequest(r.string(), r.opt_u64())
    elif msg_type == MsgType.LABEL:
        m = LabelRequest(r.string(), r.string(), r.opt_u64())
    elif msg_type == MsgType.SET_RETENTION:
        m = SetRetentionRequest(r.string(), r.u64())
    elif msg_type == MsgType.RETENTION:
        m = RetentionRequest(r.string())
    elif msg_type == MsgType.SAVE_HINT:
        m = SaveHintRequest(r.string(), r.u64(), tuple(r.pgnos()))
    else:
        raise ProtocolError(f"unknown request type 0x{msg_type:02x}")
    r.done()
    return m


def _read_at(r: Reader) -> int | datetime | str:
    kind = r.u8()
    if kind == 0:
        return r.u64()
    if kind == 1:
        text = r.string()
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            raise ProtocolError(f"RESOLVE time {text!r} is not ISO 8601") from None
    if kind == 2:
        return r.string()
    raise ProtocolError(f"RESOLVE kind {kind} is unknown")


def _write_id(w: Writer, commit_id: bytes | None) -> None:
    if commit_id is None:
        w.u8(0)
    else:
        w.u8(1).u16(len(commit_id)).raw(bytes(commit_id))


def _read_id(r: Reader) -> bytes | None:
    return r.raw(r.u16()) if r.flag() else None


# --------------------------------------------------------------------------- answers


def encode_answer(request_id: int, request_type: int, answer: Answer) -> bytes:
    w = Writer()
    if isinstance(answer, HelloOk):
        w.u16(answer.version).u32(answer.max_frame).string(answer.server)
    elif isinstance(answer, HealthOk):
        w.u8(int(answer.draining)).u32(answer.inflight).u32(answer.connections)
        w.string(answer.server)
    elif isinstance(answer, OpenResult | PagesResult):
        w.head(answer.head).pages(answer.pages)
    elif isinstance(answer, CommitResult):
        w.head(answer.head).u8(int(answer.already_applied))
    elif isinstance(answer, StageResult):
        w.u64(answer.txid).u32(answer.parts)
    elif isinstance(answer, Head):
        w.head(answer)
    elif isinstance(answer, SnapshotResult):
        w.u64(answer.txid).u32(answer.db_size_pages).head(answer.head).pages(answer.pages)
    elif isinstance(answer, ChangesResult):
        w.u64(answer.txid).u32(answer.db_size_pages).head(answer.head)
        w.u8(answer.changed is not None)
        if answer.changed is not None:
            w.pgnos(sorted(answer.changed))
    elif isinstance(answer, TxidAnswer):
        w.u64(answer.txid)
    elif isinstance(answer, RetentionAnswer):
        w.u64(answer.window_ms)
    elif isinstance(answer, HistoryAnswer):
        w.u32(len(answer.entries))
        for e in answer.entries:
            w.u64(e.txid).u64(e.committed_ms).u32(e.db_size_pages).u16(len(e.labels))
            for name in e.labels:
                w.string(name)
    else:  # pragma: no cover - the union is closed
        raise TypeError(f"not an answer: {answer!r}")
    return frame(request_type | ANSWER_BIT, request_id, w.getvalue())


def encode_error(request_id: int, exc: BaseException) -> bytes:
    w = Writer()
    write_error(w, exc)
    return frame(MsgType.ERROR, request_id, w.getvalue())


def decode_answer(request_type: int, msg_type: int, body: bytes | memoryview) -> Answer:
    """The answer to a request of ``request_type``; an ERROR answer is *raised* as the
    exception it carries. ``ProtocolError`` for an answer of the wrong type or shape."""
    r = Reader(body)
    if msg_type == MsgType.ERROR:
        raise read_error(r)
    if msg_type != request_type | ANSWER_BIT:
        raise ProtocolError(
            f"answer of type 0x{msg_type:02x} to a request of type 0x{request_type:02x}"
        )
    a: Answer
    if request_type == MsgType.HELLO:
        a = HelloOk(r.u16(), r.u32(), r.string())
    elif request_type == MsgType.HEALTH:
        a = HealthOk(r.flag(), r.u32(), r.u32(), r.string())
    elif request_type == MsgType.OPEN:
        head = r.head()
        a = OpenResult(head, _present(r.pages()))
    elif request_type == MsgType.GET_PAGES:
        a = PagesResult(r.head(), r.pages())
    elif request_type in (MsgType.COMMIT, MsgType.COMMIT_FINALIZE):
        a = CommitResult(r.head(), r.flag())
    elif request_type == MsgType.COMMIT_STAGE:
        a = StageResult(r.u64(), r.u32())
    elif request_type in (MsgType.HEAD, MsgType.SAVE_HINT):
        a = r.head()
    elif request_type == MsgType.SNAPSHOT:
        a = SnapshotResult(r.u64(), r.u32(), r.head(), r.pages())
    elif request_type == MsgType.READ_AT:
        a = PagesResult(r.head(), r.pages())
    elif request_type == MsgType.CHANGES_SINCE:
        txid, size, head = r.u64(), r.u32(), r.head()
        a = ChangesResult(txid, size, head, frozenset(r.pgnos()) if r.flag() else None)
    elif request_type in (MsgType.RESOLVE, MsgType.LABEL):
        a = TxidAnswer(r.u64())
    elif request_type in (MsgType.SET_RETENTION, MsgType.RETENTION):
        a = RetentionAnswer(r.u64())
    elif request_type == MsgType.HISTORY:
        entries = []
        for _ in range(r.u32()):
            txid, ms, size, n = r.u64(), r.u64(), r.u32(), r.u16()
            entries.append(HistoryEntry(txid, ms, size, tuple(r.string() for _ in range(n))))
        a = HistoryAnswer(tuple(entries))
    else:
        raise ProtocolError(f"unknown request type 0x{request_type:02x}")
    r.done()
    return a


def _present(pages: dict[int, bytes | None]) -> dict[int, bytes]:
    return {k: v for k, v in pages.items() if v is not None}
