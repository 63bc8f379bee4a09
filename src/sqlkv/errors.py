"""Every error sqlkv raises, in one hierarchy.

The class says whether a retry can help (``retryable``). Messages say what happened and
what to do about it. Callers match errors by class, never by message text.
"""

from __future__ import annotations

from typing import Any


class SqlkvError(Exception):
    """Base of every sqlkv error."""

    retryable: bool = False


class ConfigError(SqlkvError):
    """A setting, URL or option is invalid; fix the configuration and try again."""


class InvalidDatabaseName(ConfigError):
    """A database name breaks the name rule (``sqlkv.keyspace.check_database_name``)."""


# --------------------------------------------------------------------------- store


class StoreError(SqlkvError):
    """An error raised by the transactional key-value store layer."""


class ConflictError(StoreError):
    """The transaction read data that another transaction changed; run it again."""

    retryable = True


class TransactionTooOld(ConflictError):
    """The transaction ran longer than the store keeps conflict history; run it again."""


class GuardFailed(ConflictError):
    """A guard of the commit (``Transaction.guard``) did not hold: ``key`` held
    ``current`` (None: absent), not the value expected. Nothing was applied.

    ``Store.transact`` does not retry it (the same guard would fail again): the caller
    decides from ``current`` without reading the key again. No wire code of its own: the
    engine handles it; were it to cross the network it would travel as ``ConflictError``.
    """

    retryable = False

    def __init__(self, key: bytes, current: bytes | None) -> None:
        super().__init__(
            f"the guarded key {key[:64]!r} changed since the transaction's caller last saw "
            "it; nothing was applied. Decide from its current value and run it again."
        )
        self.key = key
        self.current = current


class RetriesExhausted(StoreError):
    """``transact`` gave up after its bounded number of attempts."""

    def __init__(self, attempts: int, last: BaseException) -> None:
        super().__init__(
            f"transaction gave up after {attempts} attempts; last error: {last}. "
            "Contention on the same keys is too high: retry later or raise max_attempts."
        )
        self.attempts = attempts
        self.last = last


class LimitExceeded(StoreError):
    """A key, value or transaction is larger than the store's configured limit.

    Raised before anything is written: the transaction is abandoned whole.
    """

    def __init__(self, what: str, actual: int, limit: int) -> None:
        super().__init__(
            f"{what} is {actual} bytes, over the limit of {limit} bytes; nothing was written. "
            "Split the data into smaller pieces or configure a larger limit."
        )
        self.what = what
        self.actual = actual
        self.limit = limit


class StoreUnavailable(StoreError):
    """The store could not be reached (connection refused or lost)."""

    retryable = True


class CommitUnknown(StoreUnavailable):
    """The connection was lost while a commit was in flight: it may or may not have applied.

    Only callers that can check (for example by a commit id) should retry.
    """

    retryable = False


class NotSupported(StoreError):
    """The driver does not offer this optional feature."""


# --------------------------------------------------------------------------- LTX codec


class LtxError(SqlkvError):
    """An LTX file is malformed, or a caller broke one of the format's rules."""


# --------------------------------------------------------------------------- engine


class EngineError(SqlkvError):
    """An error answered by the storage engine."""


class DatabaseNotFound(EngineError):
    def __init__(self, name: str) -> None:
        super().__init__(f"database {name!r} does not exist; open it first to create it")
        self.name = name


class InvalidRequest(EngineError):
    """A request the engine refuses as malformed (page 0, wrong page size, ...). Nothing changed."""


class FenceMismatch(EngineError):
    """Another owner took the database over, or the caller's head is stale. Nothing changed."""

    def __init__(self, message: str, head: Any = None) -> None:
        super().__init__(message)
        self.head = head


class CommitTooLarge(EngineError):
    def __init__(self, actual: int, limit: int) -> None:
        super().__init__(
            f"encoded commit is {actual} bytes, over max_delta_bytes={limit}; "
            "send it through commit_stage/commit_finalize instead"
        )
        self.actual = actual
        self.limit = limit


class QuotaExceeded(EngineError):
    def __init__(self, name: str, would_use: int, quota: int) -> None:
        super().__init__(
            f"database {name!r} would use {would_use} bytes, over its quota of {quota} bytes; "
            "nothing was written. Commits that do not grow the database still work at the "
            "quota (DELETE, DROP TABLE, VACUUM): free space with them, or raise the quota."
        )
        self.name = name
        self.would_use = would_use
        self.quota = quota


class StoreRewound(EngineError):
    """The store holds an older state of a database than one already acknowledged: it lost
    acknowledged commits. A store durability problem (a crash with fsync off, a restored
    backup, a replica that lags), not a takeover; nothing sqlkv can repair."""

    def __init__(self, name: str, acknowledged_txid: int, found_txid: int) -> None:
        super().__init__(
            f"the store lost acknowledged commits of database {name!r}: its head went from "
            f"txid {acknowledged_txid} back to {found_txid}. This is a store durability "
            "problem (a store that crashed with fsync off, or was restored from an older "
            "copy), not a takeover: check the store; a new connection continues from what "
            "it holds now"
        )
        self.name = name
        self.acknowledged_txid = acknowledged_txid
        self.found_txid = found_txid


class DatabaseExists(EngineError):
    """The destination of a fork already exists. Nothing was written."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"database {name!r} already exists; choose another name, or delete it first "
            f"('sqlkv delete {name}')"
        )
        self.name = name


class ForkAborted(EngineError):
    """A fork stopped before its destination's head was written: the destination does not
    exist (its partial copy is removed, or is removed by the next fork or create)."""


class CompactionBehind(EngineError):
    """Too many unfolded delta bytes: the commit is refused until compaction catches up."""

    retryable = True


class SnapshotTooOld(EngineError):
    """The state asked for (a txid, a time, a label's txid) is older than what the database
    still retains: compaction folded it away (docs/history.md). Not retryable: read a newer
    state, or lengthen the database's retention window so that later states stay readable."""


class UnknownLabel(EngineError):
    """No label of that name exists in the database (labels: ``Engine.label``)."""


class CorruptionError(EngineError):
    """A value the engine read from the store failed its check (or a key it needs is
    missing): the store holds damaged data. The value was not used and nothing was written.

    ``db`` names the database, ``kind`` the key kind (META, PIDX, DELTA, SHARD, X, T) and
    ``location`` the key within it (txid/part/chunk, shard/chunk, pgno). Not retryable:
    restore the database from a backup; ``sqlkv verify NAME`` lists every damaged key.
    """

    def __init__(self, db: str, kind: str, location: str, detail: str) -> None:
        where = f" at {location}" if location else ""
        super().__init__(
            f"database {db!r}: the stored {kind} value{where} is corrupt ({detail}); it was "
            f"not used and nothing was written. Restore the database from a backup, and run "
            f"'sqlkv verify {db}' to list every damaged key."
        )
        self.db = db
        self.kind = kind
        self.location = location
        self.detail = detail


class MigrationError(SqlkvError):
    """A v1 -> v2 migration found damaged data or failed its verification; the store is as
    it was before the attempt (the copy is removed). Inspect the source and run it again."""


# --------------------------------------------------------------------------- client and server


class ClientError(SqlkvError):
    """An error in the client (VFS) layer."""


class ConnectionFenced(ClientError):
    """Another owner took this database over; this connection is dead. Open a new one."""


class TransportError(ClientError):
    """The engine could not be reached over the network."""

    retryable = True


class ServerShuttingDown(TransportError):
    """The engine server is shutting down and did not run the request; try another node."""

    retryable = True


class CommitOutcomeUnknown(TransportError, CommitUnknown):
    """The connection failed while a commit without commit_id was in flight: it may or may
    not have applied. Read the head to find out; do not send it again blindly."""

    retryable = False


class ServerFault(EngineError):
    """The engine server failed in an unexpected way (a bug); its log has the details."""


class CommandFailed(SqlkvError):
    """A command could not do what was asked (bad input file, unknown database, ...)."""


class UsageError(SqlkvError):
    """The command line is wrong or incomplete; nothing was done."""


class ProtocolError(SqlkvError):
    """A network frame is malformed, truncated, oversized or of another protocol version."""


class AuthError(SqlkvError):
    """The token is missing, wrong, or does not allow this database."""


# --------------------------------------------------------------------------- two classes at once

_dual_classes: dict[tuple[type[BaseException], type[BaseException]], type[BaseException]] = {}


def sqlkv_kind(error: BaseException) -> type[SqlkvError] | None:
    """The sqlkv class ``error`` carries: its own, or the one it was built from by
    ``dual_error`` (the first ``SqlkvError`` class of its MRO that is not a dual class)."""
    for cls in type(error).__mro__:
        if issubclass(cls, SqlkvError) and not getattr(cls, "_sqlkv_dual", False):
            return cls
    return None


def dual_error(base: type[BaseException], error: BaseException, message: str) -> BaseException:
    """An exception that is a ``base`` AND of ``error``'s sqlkv class, saying ``message``.

    Binding layers (apsw, the DB-API module) must raise their own classes (``apsw.FullError``,
    ``sqlite3.OperationalError``); callers must still be able to catch ``QuotaExceeded`` or
    ``ConnectionFenced``. The class is built once per pair (``FullError`` + ``QuotaExceeded``
    is named ``QuotaExceeded(FullError)``), and the instance carries ``error``'s attributes
    (``quota``, ``head``, ...). An ``error`` without a sqlkv class gives a plain ``base``.
    """
    kind = sqlkv_kind(error)
    if kind is None or issubclass(kind, base):
        exc = base(message)
    else:
        cls = _dual_classes.get((base, kind))
        if cls is None:
            cls = type(
                f"{kind.__name__}({base.__name__})",
                (base, kind),
                {"_sqlkv_dual": True, "__module__": kind.__module__},
            )
            _dual_classes[(base, kind)] = cls
        exc = cls.__new__(cls, message)  # not __init__: sqlkv classes take other arguments
        exc.args = (message,)
    exc.__dict__.update({k: v for k, v in vars(error).items() if k not in exc.__dict__})
    return exc
