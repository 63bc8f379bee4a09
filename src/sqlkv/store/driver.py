"""The driver side of the KV store contract (docs/design.md §2): what a driver implements.

A driver opens a ``Snapshot`` (consistent point-in-time reads) and applies a
``CommitRequest`` atomically. Everything above it (``Transaction``, ``Store.transact``) is
``base.py``'s, written once for all drivers; ``base.py`` re-exports these names.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlkv.store.ranges import KeyRange, RangeRead, coalesce


@dataclass
class CommitRequest:
    """What a transaction asks its driver to apply atomically.

    ``clear_ranges`` apply first, then ``writes`` in key order (a ``None`` value clears the key).
    ``read_ranges`` is the read-conflict set, ``write_ranges`` the write-conflict set.
    ``guards`` are ``(key, expected value or None)`` pairs the driver checks inside the
    same store transaction, before anything is applied: the first that does not hold
    raises ``GuardFailed(key, current value)`` and nothing is applied (each guarded key is
    in ``read_ranges`` too, so a guard conflicts exactly like a serializable read).
    """

    writes: list[tuple[bytes, bytes | None]]
    clear_ranges: list[KeyRange]
    read_ranges: list[KeyRange]
    size: int
    guards: list[tuple[bytes, bytes | None]] = field(default_factory=list)

    @property
    def write_ranges(self) -> list[KeyRange]:
        points = [(k, k + b"\x00") for k, _ in self.writes]  # (k, key_after(k)), sorted
        return coalesce(self.clear_ranges + points) if self.clear_ranges else coalesce(points)


class Snapshot(ABC):
    """A driver's consistent view of the store at one read version."""

    @abstractmethod
    def get(self, key: bytes) -> bytes | None: ...

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        return [self.get(k) for k in keys]

    @abstractmethod
    def get_range(
        self, begin: bytes, end: bytes, limit: int, reverse: bool
    ) -> list[tuple[bytes, bytes]]:
        """Pairs with ``begin <= key < end`` in key order (descending if ``reverse``);
        at most ``limit`` of them when ``limit > 0``."""

    def get_ranges(self, ranges: Sequence[RangeRead]) -> list[list[tuple[bytes, bytes]]]:
        """Several range reads in one round trip (drivers with a network override this)."""
        return [self.get_range(*r) for r in ranges]

    @abstractmethod
    def commit(self, request: CommitRequest) -> None:
        """Apply ``request`` atomically, or apply nothing and raise ``GuardFailed`` (a guard
        does not hold; checked first) or ``ConflictError`` (a read changed)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the snapshot (called exactly once, after commit or on abandon)."""

    def at(self, point: str) -> None:  # noqa: B027 - optional hook
        """The fault point name of the next driver call ("" when unnamed); only the memory
        store uses it (``sqlkv.store.faults``)."""
