"""The store layer: transactional ordered key-value stores behind one contract
(docs/design.md §2, docs/kv-contract.md)."""

from sqlkv.store.base import (
    CommitRequest,
    Limits,
    RetryPolicy,
    Snapshot,
    Store,
    StoreStats,
    Transaction,
)
from sqlkv.store.memory import MemoryStore
from sqlkv.store.ranges import KeyRange, RangeRead, key_after, prefix_end
from sqlkv.store.url import open_store, resolve_store_url

__all__ = [
    "CommitRequest",
    "KeyRange",
    "Limits",
    "MemoryStore",
    "RangeRead",
    "RetryPolicy",
    "Snapshot",
    "Store",
    "StoreStats",
    "Transaction",
    "key_after",
    "open_store",
    "prefix_end",
    "resolve_store_url",
]
