"""Error answers on the wire: one stable code per exception class, mapped both ways.

An ERROR answer carries ``u16 code``, ``text message`` and the fields of that class
(below), so the client raises the very class the engine raised, with the same fields and
message: a ``FenceMismatch`` carries the current ``Head``, ``CommitTooLarge`` its sizes.

Codes are part of the protocol: never renumber or reuse one; add new ones at the end of
their block. A server exception whose class is not in the table is sent as the nearest
ancestor that is (walking its MRO); anything that is not a ``SqlkvError`` at all is a
server bug and goes out as ``ServerFault``. A client that receives a code it does not
know raises ``SqlkvError`` with the message (a newer server may add codes).

Three errors (in ``sqlkv.errors``) exist only on the network:

- ``ServerShuttingDown`` (a ``TransportError``, retryable): the node is draining and did
  not run the request; the client sends it to another node, whatever the request was.
- ``CommitOutcomeUnknown`` (a ``TransportError`` *and* a ``CommitUnknown``, not retryable):
  the connection failed after a commit without ``commit_id`` may have reached the engine;
  nobody can tell whether it applied, so the client must not blindly send it again;
- ``ServerFault``: the server failed in an unexpected way.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlkv.errors import (
    AuthError,
    CommitTooLarge,
    CommitUnknown,
    CompactionBehind,
    ConfigError,
    ConflictError,
    CorruptionError,
    DatabaseNotFound,
    EngineError,
    FenceMismatch,
    InvalidDatabaseName,
    InvalidRequest,
    LimitExceeded,
    LtxError,
    NotSupported,
    ProtocolError,
    QuotaExceeded,
    RetriesExhausted,
    ServerFault,
    ServerShuttingDown,
    SnapshotTooOld,
    SqlkvError,
    StoreError,
    StoreRewound,
    StoreUnavailable,
    TransactionTooOld,
    UnknownLabel,
)
from sqlkv.server.codec import Reader, Writer

CODES: dict[int, type[SqlkvError]] = {
    # 1..9: the protocol and the server
    1: ProtocolError,
    2: AuthError,
    3: ServerShuttingDown,
    4: ServerFault,
    # 10..19: generic
    10: SqlkvError,
    11: ConfigError,
    12: InvalidDatabaseName,
    # 20..39: the store
    20: StoreError,
    21: ConflictError,
    22: TransactionTooOld,
    23: RetriesExhausted,
    24: LimitExceeded,
    25: StoreUnavailable,
    26: CommitUnknown,
    27: NotSupported,
    # 28: retired (was a test-only error); never reuse it
    # 40..59: LTX and the engine
    40: LtxError,
    41: EngineError,
    42: DatabaseNotFound,
    43: InvalidRequest,
    44: FenceMismatch,
    45: CommitTooLarge,
    46: QuotaExceeded,
    47: CompactionBehind,
    48: CorruptionError,
    49: StoreRewound,
    50: SnapshotTooOld,
    51: UnknownLabel,
}
CLASS_CODES: dict[type[SqlkvError], int] = {cls: code for code, cls in CODES.items()}
SERVER_FAULT = CLASS_CODES[ServerFault]


def code_for(exc: BaseException) -> int:
    """The code of ``exc``'s class, or of its nearest ancestor in the table."""
    for cls in type(exc).__mro__:
        code = CLASS_CODES.get(cls)
        if code is not None:
            return code
    return SERVER_FAULT


def write_error(w: Writer, exc: BaseException) -> None:
    """Append ``exc`` as code, message and its class's fields."""
    code = code_for(exc)
    message = str(exc) if isinstance(exc, SqlkvError) else f"internal server error: {exc!r}"
    w.u16(code).text(message)
    cls = CODES[code]
    if cls is FenceMismatch:
        head = getattr(exc, "head", None)
        if head is None:
            w.u8(0)
        else:
            w.u8(1).head(head)
    elif cls is CommitTooLarge:
        w.u64(_field(exc, "actual")).u64(_field(exc, "limit"))
    elif cls is QuotaExceeded:
        w.string(str(getattr(exc, "name", ""))).u64(_field(exc, "would_use"))
        w.u64(_field(exc, "quota"))
    elif cls is DatabaseNotFound:
        w.string(str(getattr(exc, "name", "")))
    elif cls is LimitExceeded:
        w.string(str(getattr(exc, "what", ""))).u64(_field(exc, "actual"))
        w.u64(_field(exc, "limit"))
    elif cls is CorruptionError:
        for name in ("db", "kind", "location", "detail"):
            w.string(str(getattr(exc, name, "")))
    elif cls is RetriesExhausted:
        w.u32(min(_field(exc, "attempts"), 0xFFFFFFFF))
    elif cls is StoreRewound:
        w.string(str(getattr(exc, "name", ""))).u64(_field(exc, "acknowledged_txid"))
        w.u64(_field(exc, "found_txid"))


def read_error(r: Reader) -> SqlkvError:
    """The exception an ERROR answer describes (its class, fields and message)."""
    code = r.u16()
    message = r.text()
    cls = CODES.get(code)
    if cls is None:
        r.skip_rest()  # fields of a code we do not know: skip them
        return SqlkvError(f"{message} (error code {code}, unknown to this client)")
    build = _BUILDERS.get(cls)
    exc = build(r, message) if build else cls(message)
    r.done()
    return exc


def _field(exc: BaseException, name: str) -> int:
    value = getattr(exc, name, 0)
    return value if isinstance(value, int) and 0 <= value < 1 << 64 else 0


def _fence(r: Reader, message: str) -> SqlkvError:
    head = r.head() if r.flag() else None
    return FenceMismatch(message, head)


def _too_large(r: Reader, message: str) -> SqlkvError:
    return _with_message(CommitTooLarge(r.u64(), r.u64()), message)


def _quota(r: Reader, message: str) -> SqlkvError:
    return _with_message(QuotaExceeded(r.string(), r.u64(), r.u64()), message)


def _not_found(r: Reader, message: str) -> SqlkvError:
    return _with_message(DatabaseNotFound(r.string()), message)


def _limit(r: Reader, message: str) -> SqlkvError:
    return _with_message(LimitExceeded(r.string(), r.u64(), r.u64()), message)


def _exhausted(r: Reader, message: str) -> SqlkvError:
    attempts = r.u32()
    return _with_message(RetriesExhausted(attempts, ConflictError(message)), message)


def _rewound(r: Reader, message: str) -> SqlkvError:
    return _with_message(StoreRewound(r.string(), r.u64(), r.u64()), message)


def _corrupt(r: Reader, message: str) -> SqlkvError:
    return _with_message(CorruptionError(r.string(), r.string(), r.string(), r.string()), message)


def _with_message(exc: SqlkvError, message: str) -> SqlkvError:
    exc.args = (message,)  # the server's exact words
    return exc


_BUILDERS: dict[type[SqlkvError], Callable[[Reader, str], SqlkvError]] = {
    FenceMismatch: _fence,
    CommitTooLarge: _too_large,
    QuotaExceeded: _quota,
    DatabaseNotFound: _not_found,
    LimitExceeded: _limit,
    RetriesExhausted: _exhausted,
    StoreRewound: _rewound,
    CorruptionError: _corrupt,
}
