"""The messages of the ``sqlkv serve`` protocol: their type codes (``MsgType``) and one
dataclass per request, with the answer types they map to. How they are framed and encoded
is ``protocol.py``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum

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

PROTOCOL_VERSION = 1
MIN_PROTOCOL_VERSION = 1
MAGIC = b"SQKV"


class MsgType(IntEnum):
    HELLO = 0x01
    HEALTH = 0x02
    OPEN = 0x10
    GET_PAGES = 0x11
    COMMIT = 0x12
    COMMIT_STAGE = 0x13
    COMMIT_FINALIZE = 0x14
    HEAD = 0x15
    SNAPSHOT = 0x16
    READ_AT = 0x17
    CHANGES_SINCE = 0x18
    RESOLVE = 0x19
    HISTORY = 0x1A
    LABEL = 0x1B
    SET_RETENTION = 0x1C
    RETENTION = 0x1D
    SAVE_HINT = 0x1E
    ERROR = 0xFF


REQUEST_TYPES = frozenset(t for t in MsgType if t is not MsgType.ERROR)


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class Hello:
    token: bytes
    client: str = "sqlkv"
    min_version: int = MIN_PROTOCOL_VERSION
    max_version: int = PROTOCOL_VERSION
    magic: bytes = MAGIC


@dataclass(frozen=True)
class HelloOk:
    version: int
    max_frame: int
    server: str


@dataclass(frozen=True)
class Health:
    pass


@dataclass(frozen=True)
class HealthOk:
    draining: bool
    inflight: int
    connections: int
    server: str


@dataclass(frozen=True)
class OpenRequest:
    db: str
    preload: tuple[int, ...] = ()
    preload_bytes: int | None = None
    create: bool = True


@dataclass(frozen=True)
class GetPagesRequest:
    db: str
    generation: int
    pgnos: tuple[int, ...]


@dataclass(frozen=True)
class CommitRequest:
    db: str
    generation: int
    expected_head_txid: int
    db_size_pages: int
    commit_id: bytes | None
    pages: dict[int, bytes]


@dataclass(frozen=True)
class StageRequest:
    db: str
    generation: int
    txid: int | None
    seq: int
    pages: dict[int, bytes]


@dataclass(frozen=True)
class FinalizeRequest:
    db: str
    generation: int
    expected_head_txid: int
    txid: int
    db_size_pages: int
    commit_id: bytes | None


@dataclass(frozen=True)
class HeadRequest:
    db: str


@dataclass(frozen=True)
class SnapshotRequest:
    db: str
    at: int | None = None
    preload: tuple[int, ...] = ()


@dataclass(frozen=True)
class ReadAtRequest:
    db: str
    txid: int
    pgnos: tuple[int, ...]


@dataclass(frozen=True)
class ChangesRequest:
    db: str
    txid: int


@dataclass(frozen=True)
class ResolveRequest:
    db: str
    at: int | datetime | str


@dataclass(frozen=True)
class HistoryRequest:
    db: str
    limit: int | None = None


@dataclass(frozen=True)
class LabelRequest:
    db: str
    label: str
    txid: int | None = None


@dataclass(frozen=True)
class SetRetentionRequest:
    db: str
    window_ms: int


@dataclass(frozen=True)
class RetentionRequest:
    db: str


@dataclass(frozen=True)
class TxidAnswer:
    """A txid (RESOLVE, LABEL)."""

    txid: int


@dataclass(frozen=True)
class HistoryAnswer:
    entries: tuple[HistoryEntry, ...]


@dataclass(frozen=True)
class RetentionAnswer:
    window_ms: int


@dataclass(frozen=True)
class SaveHintRequest:
    db: str
    generation: int
    pgnos: tuple[int, ...]


Request = (
    Hello
    | Health
    | OpenRequest
    | GetPagesRequest
    | CommitRequest
    | StageRequest
    | FinalizeRequest
    | HeadRequest
    | SnapshotRequest
    | ReadAtRequest
    | ChangesRequest
    | ResolveRequest
    | HistoryRequest
    | LabelRequest
    | SetRetentionRequest
    | RetentionRequest
    | SaveHintRequest
)
Answer = (
    HelloOk
    | HealthOk
    | OpenResult
    | PagesResult
    | CommitResult
    | StageResult
    | Head
    | SnapshotResult
    | ChangesResult
    | TxidAnswer
    | HistoryAnswer
    | RetentionAnswer
)

REQUEST_TYPE: dict[type, MsgType] = {
    Hello: MsgType.HELLO,
    Health: MsgType.HEALTH,
    OpenRequest: MsgType.OPEN,
    GetPagesRequest: MsgType.GET_PAGES,
    CommitRequest: MsgType.COMMIT,
    StageRequest: MsgType.COMMIT_STAGE,
    FinalizeRequest: MsgType.COMMIT_FINALIZE,
    HeadRequest: MsgType.HEAD,
    SnapshotRequest: MsgType.SNAPSHOT,
    ReadAtRequest: MsgType.READ_AT,
    ChangesRequest: MsgType.CHANGES_SINCE,
    ResolveRequest: MsgType.RESOLVE,
    HistoryRequest: MsgType.HISTORY,
    LabelRequest: MsgType.LABEL,
    SetRetentionRequest: MsgType.SET_RETENTION,
    RetentionRequest: MsgType.RETENTION,
    SaveHintRequest: MsgType.SAVE_HINT,
}


def database_of(request: Request) -> str | None:
    """The database a request touches (None for HELLO and HEALTH)."""
    return getattr(request, "db", None)
