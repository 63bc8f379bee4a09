"""Random interleaved transactions against every driver, compared with a serial model.

Up to three transactions are open at once; each reads (get, get_many, range reads with
limits and reverse, multi-range reads; serializable or snapshot), writes (set, clear,
clear_range) and then commits or is abandoned, in a random interleaving. The model is a
dict per committed version plus the log of each commit's write ranges. Checked:

- every read returns exactly what the model's snapshot overlaid with the transaction's
  own writes and clears holds, byte for byte (read-your-writes, limits, reverse);
- a commit fails with ``ConflictError`` exactly when a commit after this transaction
  began wrote into a range it read serializably (the conflict ranges of limited reads
  cover only what was read; snapshot reads add none); read-only transactions commit;
- after each commit the store holds exactly the model's state.

PostgreSQL differs as its module documents: it may refuse more (SSI), a key inserted
where a transaction read nothing goes undetected, and a clear removes only rows the
transaction's snapshot holds (a key inserted by a later-begun, earlier-committed
transaction survives: the clearing transaction is ordered first). So there a commit must
fail when a later commit changed a row that existed in its snapshot inside its read
ranges, any other refusal is accepted as an extra retry, and the model's clears see the
snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from sqlkv.errors import ConflictError
from sqlkv.store import Store, Transaction

LONG = b"b" * 600  # over LMDB's 511-byte key limit: lives in its "big" buckets
KEYS = [b"", b"\x00", b"a", b"a\x00", b"ab", b"b", LONG, LONG + b"\x00", LONG + b"c", b"c", b"\xff"]
BOUNDS = [*KEYS, b"ba", b"\xff\x00", b"\xff\xff"]
END = b"\xff\xff\xff"
PIN = b"\xff\xfe"  # snapshot-read at begin: fixes PostgreSQL's snapshot there too
MAX_OPEN = 3

keys = st.sampled_from(KEYS)
bounds = st.sampled_from(BOUNDS)
values = st.binary(max_size=6) | st.sampled_from([b"", b"\x00", b"\xff\xff", b"v" * 300])
limits = st.sampled_from([0, 0, 1, 2, 3])
Rows = list[tuple[bytes, bytes]]
Range = tuple[bytes, bytes]


def after(key: bytes) -> bytes:
    return key + b"\x00"


def overlaps(a: list[Range], b: list[Range]) -> bool:
    return any(ab < be and bb < ae for ab, ae in a for bb, be in b)


def in_ranges(key: bytes, ranges: list[Range]) -> bool:
    return any(b <= key < e for b, e in ranges)


@dataclass
class Commit:
    version: int
    write_ranges: list[Range]
    changed_rows: set[bytes]  # keys whose stored row was inserted, updated or deleted


@dataclass
class Open:
    tr: Transaction
    version: int  # model version the snapshot was taken at
    writes: dict[bytes, bytes | None] = field(default_factory=dict)
    cleared: list[Range] = field(default_factory=list)
    read_ranges: list[Range] = field(default_factory=list)


class Model:
    def __init__(self, *, rows_only: bool = False) -> None:
        self.rows_only = rows_only
        self.states: list[dict[bytes, bytes]] = [{}]
        self.log: list[Commit] = []

    @property
    def version(self) -> int:
        return len(self.states) - 1

    def view(self, t: Open) -> dict[bytes, bytes]:
        out = {k: v for k, v in self.states[t.version].items() if not in_ranges(k, t.cleared)}
        for k, v in t.writes.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = v
        return out

    def get_range(self, t: Open, begin: bytes, end: bytes, limit: int, reverse: bool) -> Rows:
        view = self.view(t)
        rows = sorted((k, v) for k, v in view.items() if begin <= k < end)
        if reverse:
            rows.reverse()
        return rows[:limit] if limit else rows

    def read_range(
        self, t: Open, begin: bytes, end: bytes, limit: int, reverse: bool, snapshot: bool
    ) -> Rows:
        if begin >= end:
            return []
        rows = self.get_range(t, begin, end, limit, reverse)
        if not snapshot:
            if limit and len(rows) == limit:
                last = rows[-1][0]
                t.read_ranges.append((last, end) if reverse else (begin, after(last)))
            else:
                t.read_ranges.append((begin, end))
        return rows

    def commit(self, t: Open) -> tuple[bool, bool]:
        """(strict, existing): whether a later commit wrote into ``t``'s read ranges, and
        whether one changed a row that existed in ``t``'s snapshot inside them."""
        later = [c for c in self.log if c.version > t.version]
        if self.rows_only:
            # etcd: a clear of an absent key leaves no revision, so only commits that
            # changed a row inside the read ranges count (the outcome is the same).
            strict = any(in_ranges(k, t.read_ranges) for c in later for k in c.changed_rows)
        else:
            strict = any(overlaps(t.read_ranges, c.write_ranges) for c in later)
        existed = {k for k in self.states[t.version] if in_ranges(k, t.read_ranges)}
        existing = any(existed & c.changed_rows for c in later)
        return strict, existing

    def apply(self, t: Open, *, clears_see_snapshot: bool = False) -> None:
        """Commit ``t``. With ``clears_see_snapshot`` (PostgreSQL), a clear removes only
        keys ``t``'s snapshot held: one inserted since survives (see the module docstring)."""
        before = self.states[-1]
        seen = self.states[t.version] if clears_see_snapshot else before
        gone = {k for k in before if in_ranges(k, t.cleared) and k in seen}
        state = {k: v for k, v in before.items() if k not in gone}
        changed = set(gone)
        for k, v in t.writes.items():
            if v is None:
                if k not in seen:
                    continue
                if k in state:
                    changed.add(k)
                state.pop(k, None)
            else:
                state[k] = v
                changed.add(k)
        ranges = [*t.cleared, *[(k, after(k)) for k in t.writes]]
        self.states.append(state)
        self.log.append(Commit(self.version, ranges, changed))


class Transactions(RuleBasedStateMachine):
    store: Store
    exact: bool  # False for PostgreSQL (see the module docstring)
    rows_only: bool = False  # etcd: only changed rows conflict (Model.commit)

    def __init__(self) -> None:
        super().__init__()
        self.model = Model(rows_only=self.rows_only)
        self.open: list[Open] = []
        self.store.transact(lambda tr: tr.clear_range(b"", END))
        assert self._stored() == []

    def _stored(self) -> Rows:
        return self.store.transact(lambda tr: tr.get_range(b"", END, snapshot=True))

    def _pick(self, i: int) -> Open:
        return self.open[i % len(self.open)]

    def _read(self, t: Open, fn: Callable[[Transaction], object]) -> object:
        """Run a read; PostgreSQL may refuse one (SSI): the transaction is then dead."""
        try:
            return fn(t.tr)
        except ConflictError:
            if self.exact:
                raise
            self._drop(t)
            return None

    def _drop(self, t: Open) -> None:
        t.tr.close()
        self.open.remove(t)

    def teardown(self) -> None:
        for t in list(self.open):
            self._drop(t)

    # ------------------------------------------------------------------ begin, end

    @initialize(data=st.dictionaries(keys, values, max_size=len(KEYS)))
    def fill(self, data: dict[bytes, bytes]) -> None:
        def fn(tr: Transaction) -> None:
            for k, v in data.items():
                tr.set(k, v)

        self.store.transact(fn)
        t = Open(self.store.begin(), self.model.version, writes=dict(data))
        t.tr.close()
        self.model.apply(t)
        assert self._stored() == sorted(data.items())

    @precondition(lambda self: len(self.open) < MAX_OPEN)
    @rule()
    def begin(self) -> None:
        tr = self.store.begin()
        tr.get(PIN, snapshot=True)
        self.open.append(Open(tr, self.model.version))

    @precondition(lambda self: self.open)
    @rule(key=keys, value=st.none() | values)
    def outside_write(self, key: bytes, value: bytes | None) -> None:
        """A blind write committed at once by a transaction outside the open ones."""
        self.store.transact(lambda tr: tr.set(key, value) if value is not None else tr.clear(key))
        t = Open(self.store.begin(), self.model.version, writes={key: value})
        t.tr.close()
        self.model.apply(t)

    @precondition(lambda self: self.open)
    @rule(i=st.integers(0, MAX_OPEN - 1))
    def abandon(self, i: int) -> None:
        self._drop(self._pick(i))

    @precondition(lambda self: self.open)
    @rule(i=st.integers(0, MAX_OPEN - 1))
    def commit(self, i: int) -> None:
        t = self._pick(i)
        self.open.remove(t)
        read_only = not t.writes and not t.cleared
        strict, existing = self.model.commit(t)
        try:
            t.tr.commit()
            conflicted = False
        except ConflictError:
            conflicted = True
        if read_only:
            assert not conflicted, "a read-only transaction failed to commit"
        elif self.exact:
            assert conflicted == strict, (
                f"commit {'refused' if conflicted else 'accepted'}; the contract says "
                f"{'refuse' if strict else 'accept'} (read ranges {t.read_ranges})"
            )
        else:
            assert not (existing and not conflicted), (
                f"a row read serializably in {t.read_ranges} was changed by a later "
                "commit, yet this commit was accepted"
            )
        if not conflicted and not read_only:
            self.model.apply(t, clears_see_snapshot=not self.exact)
        assert self._stored() == sorted(self.model.states[-1].items())

    # ------------------------------------------------------------------ reads

    @precondition(lambda self: self.open)
    @rule(i=st.integers(0, MAX_OPEN - 1), key=keys, snapshot=st.booleans())
    def get(self, i: int, key: bytes, snapshot: bool) -> None:
        t = self._pick(i)
        got = self._read(t, lambda tr: tr.get(key, snapshot=snapshot))
        if t in self.open:
            if not snapshot:
                t.read_ranges.append((key, after(key)))
            assert got == self.model.view(t).get(key)

    @precondition(lambda self: self.open)
    @rule(i=st.integers(0, MAX_OPEN - 1), ks=st.lists(keys, max_size=6), snapshot=st.booleans())
    def get_many(self, i: int, ks: list[bytes], snapshot: bool) -> None:
        t = self._pick(i)
        got = self._read(t, lambda tr: tr.get_many(ks, snapshot=snapshot))
        if t in self.open:
            if not snapshot:
                t.read_ranges += [(k, after(k)) for k in ks]
            view = self.model.view(t)
            assert got == [view.get(k) for k in ks]

    @precondition(lambda self: self.open)
    @rule(
        i=st.integers(0, MAX_OPEN - 1),
        begin=bounds,
        end=bounds,
        limit=limits,
        reverse=st.booleans(),
        snapshot=st.booleans(),
    )
    def get_range(
        self, i: int, begin: bytes, end: bytes, limit: int, reverse: bool, snapshot: bool
    ) -> None:
        t = self._pick(i)
        got = self._read(
            t,
            lambda tr: tr.get_range(begin, end, limit=limit, reverse=reverse, snapshot=snapshot),
        )
        if t in self.open:
            assert got == self.model.read_range(t, begin, end, limit, reverse, snapshot)

    @precondition(lambda self: self.open)
    @rule(
        i=st.integers(0, MAX_OPEN - 1),
        reads=st.lists(st.tuples(bounds, bounds, limits, st.booleans()), max_size=4),
        snapshot=st.booleans(),
    )
    def get_ranges(
        self, i: int, reads: list[tuple[bytes, bytes, int, bool]], snapshot: bool
    ) -> None:
        t = self._pick(i)
        got = self._read(t, lambda tr: tr.get_ranges(reads, snapshot=snapshot))
        if t in self.open:
            assert got == [self.model.read_range(t, *r, snapshot) for r in reads]

    @precondition(lambda self: self.open)
    @rule(i=st.integers(0, MAX_OPEN - 1), key=st.sampled_from(KEYS[2:6]), value=values)
    def read_modify_write(self, i: int, key: bytes, value: bytes) -> None:
        """A serializable read and a write of the same key: the classic conflict."""
        t = self._pick(i)
        got = self._read(t, lambda tr: tr.get(key))
        if t in self.open:
            t.read_ranges.append((key, after(key)))
            assert got == self.model.view(t).get(key)
            t.tr.set(key, (got or b"") + value)
            t.writes[key] = (got or b"") + value

    # ------------------------------------------------------------------ writes

    @precondition(lambda self: self.open)
    @rule(i=st.integers(0, MAX_OPEN - 1), key=keys, value=values)
    def set(self, i: int, key: bytes, value: bytes) -> None:
        t = self._pick(i)
        t.tr.set(key, value)
        t.writes[key] = value

    @precondition(lambda self: self.open)
    @rule(i=st.integers(0, MAX_OPEN - 1), key=keys)
    def clear(self, i: int, key: bytes) -> None:
        t = self._pick(i)
        t.tr.clear(key)
        t.writes[key] = None

    @precondition(lambda self: self.open)
    @rule(i=st.integers(0, MAX_OPEN - 1), begin=bounds, end=bounds)
    def clear_range(self, i: int, begin: bytes, end: bytes) -> None:
        t = self._pick(i)
        t.tr.clear_range(begin, end)
        if begin < end:
            t.writes = {k: v for k, v in t.writes.items() if not begin <= k < end}
            t.cleared.append((begin, end))


def test_interleaved_transactions_match_the_serial_model(store: Store, driver: str) -> None:
    examples = {"memory": 300, "embedded": 120, "lmdb": 120, "postgres": 60, "etcd": 40}[driver]
    machine = type(
        "TransactionsOn" + driver.title(),
        (Transactions,),
        {"store": store, "exact": driver != "postgres", "rows_only": driver == "etcd"},
    )
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=80,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
