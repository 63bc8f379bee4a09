"""One request of the ``sqlkv serve`` protocol to one engine call: which ``EngineApi``
method each request message names, and the answer message its result travels in."""

from __future__ import annotations

from sqlkv.engine.api import EngineApi
from sqlkv.errors import ProtocolError
from sqlkv.server.messages import (
    Answer,
    ChangesRequest,
    CommitRequest,
    FinalizeRequest,
    GetPagesRequest,
    HeadRequest,
    HistoryAnswer,
    HistoryRequest,
    LabelRequest,
    OpenRequest,
    ReadAtRequest,
    Request,
    ResolveRequest,
    RetentionAnswer,
    RetentionRequest,
    SaveHintRequest,
    SetRetentionRequest,
    SnapshotRequest,
    StageRequest,
    TxidAnswer,
)


def call_engine(e: EngineApi, m: Request) -> Answer:
    """The engine call ``m`` asks for, and its answer."""
    if isinstance(m, OpenRequest):
        return e.open(m.db, preload=m.preload, preload_bytes=m.preload_bytes, create=m.create)
    if isinstance(m, GetPagesRequest):
        return e.get_pages(m.db, m.generation, m.pgnos)
    if isinstance(m, CommitRequest):
        return e.commit(
            m.db,
            m.generation,
            m.expected_head_txid,
            m.pages,
            m.db_size_pages,
            commit_id=m.commit_id,
        )
    if isinstance(m, StageRequest):
        return e.commit_stage(m.db, m.generation, m.txid, m.seq, m.pages)
    if isinstance(m, FinalizeRequest):
        return e.commit_finalize(
            m.db,
            m.generation,
            m.expected_head_txid,
            m.txid,
            m.db_size_pages,
            commit_id=m.commit_id,
        )
    if isinstance(m, HeadRequest):
        return e.head(m.db)
    if isinstance(m, SnapshotRequest):
        return e.snapshot(m.db, at=m.at, preload=m.preload)
    if isinstance(m, ReadAtRequest):
        return e.read_at(m.db, m.txid, m.pgnos)
    if isinstance(m, ChangesRequest):
        return e.changes_since(m.db, m.txid)
    if isinstance(m, ResolveRequest):
        return TxidAnswer(e.resolve(m.db, m.at))
    if isinstance(m, HistoryRequest):
        return HistoryAnswer(tuple(e.history(m.db, limit=m.limit)))
    if isinstance(m, LabelRequest):
        return TxidAnswer(e.label(m.db, m.label, m.txid))
    if isinstance(m, SetRetentionRequest):
        return RetentionAnswer(round(e.set_retention(m.db, m.window_ms / 1000) * 1000))
    if isinstance(m, RetentionRequest):
        return RetentionAnswer(round(e.retention(m.db) * 1000))
    if isinstance(m, SaveHintRequest):
        return e.save_hint(m.db, m.generation, m.pgnos)
    raise ProtocolError(f"{type(m).__name__} is not an engine request")
