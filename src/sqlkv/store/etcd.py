"""The etcd store: a replicated store on an etcd v3 cluster (Raft), under one key prefix.

``EtcdStore("etcd://host1:2379,host2:2379,host3:2379/prefix")``; the URL, TLS and
authentication options and the HTTP client are in ``etcd_client.py``; docs/etcd.md has the
design, the operator's settings and the measurements.

Transactions
------------
- Reads are at one revision: the first read of a transaction is linearizable and its
  answer's revision ``rv`` pins the snapshot; every later read asks for revision ``rv``,
  serializable (answered by the member alone, no leader round trip).
  Several reads in one call (``get_many``, ``get_ranges``) are one read-only etcd ``Txn``.
  A revision compacted away answers ``TransactionTooOld`` (retryable).
- Writes are buffered by ``base.Transaction``; the commit is one etcd ``Txn`` whose
  compares decide it. When they fail nothing is written and the commit is a retryable
  ``ConflictError``.

How the compares cover what was read serializably (``CommitRequest.read_ranges``)
-------------------------------------------------------------------------------
Every key a read returned is remembered with its ``mod_revision`` at ``rv``. For each read
range ``[b, e)``:

1. ``mod_revision(k) == m_k`` for each key ``k`` in ``[b, e)`` that existed at ``rv``
   (with revision ``m_k``): it fails when ``k`` was changed or *deleted* since (a missing
   key compares as revision 0), also when it was deleted and created again;
2. one range compare ``mod_revision < rv + 1`` over ``[b, e)`` (etcd >= 3.3 evaluates a
   compare with ``range_end`` on every key present in the range): it fails when any key in
   the range was written after ``rv``, so an *inserted* key (a phantom) fails it. A single
   key that existed needs only (1); an absent one only (2).

Together: the commit applies only if no key of ``[b, e)`` was inserted, changed or deleted
since ``rv``, which is the contract. Keys the transaction cleared or wrote itself before
reading are not fetched and so get no (1); the transaction overwrites them anyway, so its
outcome does not depend on them. A transaction that read nothing from the store (every
read answered by its own writes) has nothing to compare.

etcd limits each Txn level to ``--max-txn-ops`` compares or operations, and a nested Txn
to what its parent level left. The compares must fit one level, so a transaction may read
at most that many keys serializably (``LimitExceeded`` names the setting otherwise; the
test cluster and docs/etcd.md use 1000000, where the request size is the real bound).
Write operations are packed into a tree of compare-less nested Txns (``nest``), so a
commit may write many more keys than the setting on a stock cluster. The request's size,
``--max-request-bytes``, is what ``default_limits`` derives the declared ``Limits`` from;
a commit whose encoded size would still exceed it (a huge read-conflict set) is refused
with ``LimitExceeded`` before it is sent.

etcd refuses a Put inside a DeleteRange of the same Txn, so a cleared range is sent as the
pieces between the keys the transaction sets in it.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Sequence
from typing import Any

from sqlkv.errors import ConflictError, GuardFailed, LimitExceeded
from sqlkv.store.base import CommitRequest, Limits, RetryPolicy, Snapshot, Store
from sqlkv.store.etcd_client import EtcdClient, EtcdConfig, b64, parse_url, unb64
from sqlkv.store.ranges import KeyRange, RangeRead, key_after

__all__ = ["EtcdStore", "default_limits", "nest"]

_OP_OVERHEAD = 24  # protobuf framing of one operation or compare, generously
_REQUEST_RESERVE = 4096  # the request's header and nesting


def default_limits(config: EtcdConfig) -> Limits:
    """FoundationDB's limits where the cluster's request size allows, smaller otherwise:
    a transaction may use 60% of ``--max-request-bytes`` for its writes, leaving the rest
    to per-operation overhead and the read-conflict compares."""
    txn = min(10_000_000, int(config.max_request_bytes * 0.6))
    return Limits(
        max_key_bytes=10_000, max_value_bytes=min(100_000, txn // 4), max_transaction_bytes=txn
    )


class EtcdStore(Store):
    """A store kept under one key prefix of an etcd v3 cluster."""

    def __init__(
        self, url: str, *, limits: Limits | None = None, retry: RetryPolicy | None = None
    ) -> None:
        config = parse_url(url)
        super().__init__(limits=limits or default_limits(config), retry=retry)
        self.config = config
        self.url = config.public_url
        self.client = EtcdClient(config)

    def _open_snapshot(self) -> Snapshot:
        return _EtcdSnapshot(self)

    def drop(self) -> None:
        """Delete every key under this store's prefix (tests and tools)."""
        prefix = self.config.prefix
        end = prefix[:-1] + bytes([prefix[-1] + 1])
        body = {"key": b64(prefix), "range_end": b64(end)}
        self.client.commit("/v3/kv/deleterange", body)

    def close(self) -> None:
        self.client.close()

    def __repr__(self) -> str:
        return f"EtcdStore({self.url!r})"


class _EtcdSnapshot(Snapshot):
    """Reads at one pinned revision; the commit is one (nested) Txn with compares."""

    def __init__(self, store: EtcdStore) -> None:
        self._store = store
        self._prefix = store.config.prefix
        self._rev: int | None = None
        self._mod: dict[bytes, int] = {}  # key -> mod_revision at _rev, for keys read

    # ------------------------------------------------------------------ reads

    def get(self, key: bytes) -> bytes | None:
        rows = self._read([self._range_body(key, None, 0, False)])[0]
        return rows[0][1] if rows else None

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        answers = self._read([self._range_body(k, None, 0, False) for k in keys])
        return [rows[0][1] if rows else None for rows in answers]

    def get_range(
        self, begin: bytes, end: bytes, limit: int, reverse: bool
    ) -> list[tuple[bytes, bytes]]:
        return self._read([self._range_body(begin, end, limit, reverse)])[0]

    def get_ranges(self, ranges: Sequence[RangeRead]) -> list[list[tuple[bytes, bytes]]]:
        return self._read([self._range_body(*r) for r in ranges])

    def _range_body(
        self, begin: bytes, end: bytes | None, limit: int, reverse: bool
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"key": b64(self._prefix + begin)}
        if end is not None:
            body["range_end"] = b64(self._prefix + end)
        if limit:
            body["limit"] = limit
        if reverse:
            body["sort_order"] = "DESCEND"
            body["sort_target"] = "KEY"
        return body

    def _read(self, bodies: list[dict[str, Any]]) -> list[list[tuple[bytes, bytes]]]:
        """Answer range requests at the pinned revision (pinning it on the first read):
        one ``Range`` call, or read-only Txns of at most ``max_txn_ops`` ranges each."""
        client = self._store.client
        out: list[list[tuple[bytes, bytes]]] = []
        step = self._store.config.max_txn_ops
        for i in range(0, len(bodies), step):
            chunk = bodies[i : i + step]
            if self._rev is not None:
                # The revision is fixed: any member that applied it answers alone (no
                # leader round trip); one that has not yet answers "future revision" and
                # the client tries the next.
                for body in chunk:
                    body["revision"] = str(self._rev)
                    body["serializable"] = True
            if len(chunk) == 1:
                answer = client.read("/v3/kv/range", chunk[0])
                results = [answer]
            else:
                answer = client.read(
                    "/v3/kv/txn", {"success": [{"request_range": b} for b in chunk]}
                )
                results = [r.get("response_range", {}) for r in answer.get("responses", [])]
            if self._rev is None:
                self._rev = int(answer["header"]["revision"])
            out.extend(self._rows(r) for r in results)
        return out

    def _rows(self, answer: dict[str, Any]) -> list[tuple[bytes, bytes]]:
        cut = len(self._prefix)
        rows = []
        for kv in answer.get("kvs", ()):
            key = unb64(kv["key"])[cut:]
            self._mod[key] = int(kv["mod_revision"])
            rows.append((key, unb64(kv.get("value"))))
        return rows

    # ------------------------------------------------------------------ commit

    def commit(self, request: CommitRequest) -> None:
        config = self._store.config
        compares, compare_bytes = self._compares(request.read_ranges)
        guards, guard_bytes = self._guards(request.guards)
        ops, op_bytes = self._write_ops(request)
        size = compare_bytes + guard_bytes + op_bytes + _REQUEST_RESERVE
        if size > config.max_request_bytes:
            raise LimitExceeded("transaction", size, config.max_request_bytes)
        body = nest(guards + compares, ops, config.max_txn_ops)
        if guards:  # when a compare fails, the answer carries the guarded keys' values
            body["failure"] = [
                {"request_range": {"key": b64(self._prefix + k)}} for k, _ in request.guards
            ]
        answer = self._store.client.commit("/v3/kv/txn", body)
        if not answer.get("succeeded", False):
            self._raise_guard_failed(request.guards, answer)
            raise ConflictError(
                "another transaction changed keys this one read; it will be retried"
            )

    def _guards(self, guards: list[tuple[bytes, bytes | None]]) -> tuple[list[dict[str, Any]], int]:
        """A compare per guard: the value equal, or (None) the key absent (version 0)."""
        out: list[dict[str, Any]] = []
        size = 0
        for key, expected in guards:
            compare: dict[str, Any] = {"key": b64(self._prefix + key), "result": "EQUAL"}
            if expected is None:
                compare |= {"target": "VERSION", "version": "0"}
            else:
                compare |= {"target": "VALUE", "value": b64(expected)}
            out.append(compare)
            size += len(self._prefix) + len(key) + len(expected or b"") + _OP_OVERHEAD
        return out, size

    def _raise_guard_failed(
        self, guards: list[tuple[bytes, bytes | None]], answer: dict[str, Any]
    ) -> None:
        """Raise ``GuardFailed`` for the first guard whose key the failed Txn found changed."""
        responses = answer.get("responses", [])
        for (key, expected), response in zip(guards, responses, strict=False):
            rows = self._rows(response.get("response_range", {}))
            current = rows[0][1] if rows else None
            if current != expected:
                raise GuardFailed(key, current)

    def _compares(self, read_ranges: list[KeyRange]) -> tuple[list[dict[str, Any]], int]:
        if self._rev is None or not read_ranges:
            return [], 0
        p = self._prefix
        below = str(self._rev + 1)
        known = sorted(self._mod)
        out: list[dict[str, Any]] = []
        size = 0
        for begin, end in read_ranges:
            lo = bisect.bisect_left(known, begin)
            hi = bisect.bisect_left(known, end)
            for key in known[lo:hi]:
                out.append(
                    {
                        "key": b64(p + key),
                        "target": "MOD",
                        "result": "EQUAL",
                        "mod_revision": str(self._mod[key]),
                    }
                )
                size += len(p) + len(key) + _OP_OVERHEAD
            single = end == key_after(begin)
            if single and hi > lo:
                continue  # an existing single key: its equality compare covers it
            guard: dict[str, Any] = {
                "key": b64(p + begin),
                "target": "MOD",
                "result": "LESS",
                "mod_revision": below,
            }
            if not single:
                guard["range_end"] = b64(p + end)
            out.append(guard)
            size += 2 * len(p) + len(begin) + len(end) + _OP_OVERHEAD
        return out, size

    def _write_ops(self, request: CommitRequest) -> tuple[list[dict[str, Any]], int]:
        p = self._prefix
        ops: list[dict[str, Any]] = []
        size = 0
        puts = [k for k, v in request.writes if v is not None]
        for begin, end in request.clear_ranges:
            for lo, hi in _split_around(begin, end, puts):
                ops.append({"request_delete_range": {"key": b64(p + lo), "range_end": b64(p + hi)}})
                size += 2 * len(p) + len(lo) + len(hi) + _OP_OVERHEAD
        cleared = [b for b, _ in request.clear_ranges]
        for key, value in request.writes:
            if value is None:
                if _inside(key, request.clear_ranges, cleared):
                    continue  # already removed by a cleared range
                ops.append({"request_delete_range": {"key": b64(p + key)}})
                size += len(p) + len(key) + _OP_OVERHEAD
            else:
                ops.append({"request_put": {"key": b64(p + key), "value": b64(value)}})
                size += len(p) + len(key) + len(value) + _OP_OVERHEAD
        return ops, size


def nest(compares: list[dict[str, Any]], ops: list[dict[str, Any]], max_ops: int) -> dict[str, Any]:
    """One Txn body holding every compare and operation within etcd's ``--max-txn-ops``.

    etcd counts, per Txn level, the larger of its compares and its operations, and gives a
    nested Txn only what its parent left (``max_ops`` minus the parent's count). So the
    compares must fit in one level (``LimitExceeded`` otherwise: the cluster needs a larger
    ``--max-txn-ops``), while operations are packed into a tree of compare-less nested Txns.
    """
    if len(compares) > max_ops or (compares and len(ops) > max_ops and len(compares) > max_ops - 2):
        raise _too_many("keys read serializably", len(compares), max_ops)
    if len(ops) <= max_ops:
        return {"compare": compares, "success": ops}
    return {"compare": compares, "success": _pack(ops, max_ops - len(compares))}


def _pack(ops: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """At most ``budget`` operations whose nested Txns fit what each level leaves."""
    if len(ops) <= budget:
        return ops
    fan = budget // 2
    per = -(-len(ops) // fan)
    if fan < 1 or per > _capacity(budget - fan):
        raise _too_many("write operations", len(ops), _capacity(budget))
    return [
        {"request_txn": {"success": _pack(ops[i : i + per], budget - fan)}}
        for i in range(0, len(ops), per)
    ]


def _too_many(what: str, count: int, limit: int) -> LimitExceeded:
    exc = LimitExceeded("transaction", count, limit)
    exc.args = (
        f"{count} {what} in one transaction, over the {limit} the cluster's --max-txn-ops "
        "allows; nothing was written. Raise --max-txn-ops on every member (docs/etcd.md) "
        "and give the URL ?max_txn_ops= to match.",
    )
    return exc


@functools.lru_cache(maxsize=256)
def _capacity(budget: int) -> int:
    """How many operations ``_pack`` fits under ``budget``."""
    if budget < 4:
        return max(budget, 0)
    fan = budget // 2
    return max(budget, fan * _capacity(budget - fan))


def _split_around(begin: bytes, end: bytes, keys: list[bytes]) -> list[KeyRange]:
    """``[begin, end)`` without the (sorted) ``keys``: the pieces between them."""
    pieces = []
    lo = begin
    start = bisect.bisect_left(keys, begin)
    for key in keys[start : bisect.bisect_left(keys, end)]:
        if lo < key:
            pieces.append((lo, key))
        lo = key_after(key)
    if lo < end:
        pieces.append((lo, end))
    return pieces


def _inside(key: bytes, ranges: list[KeyRange], begins: list[bytes]) -> bool:
    i = bisect.bisect_right(begins, key) - 1
    return i >= 0 and key < ranges[i][1]
