"""Looking at a v1 database straight in the store, without the VFS or its caches.

``check(store, name)`` lists violations of the layout invariant (``keys.py``): metadata
that cannot be decoded, or that points at a missing or too short chunk. Orphaned chunks
(past a file's end, or of a deleted file) are reported by ``inspect`` but are no
violation: a crash is allowed to leave them. Both read the whole database in one
snapshot, so they are for tests and tools, not for large databases in service.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlkv.store import Store, Transaction
from sqlkv.vfs.v1.keys import CHUNK_SIZE, ROLES, FileKeys, chunk_count, decode_size


@dataclass
class FileReport:
    """One file as the store holds it. ``size`` is None when its metadata key is absent."""

    role: str
    size: int | None
    chunks: dict[int, bytes] = field(default_factory=dict)

    @property
    def orphans(self) -> list[int]:
        """Chunk indexes past the end (or of a deleted file): wasted space, never read."""
        end = chunk_count(self.size) if self.size is not None else 0
        return sorted(i for i in self.chunks if i >= end)

    def problems(self) -> list[str]:
        if self.size is None:
            return []
        out = []
        for i in range(chunk_count(self.size)):
            need = min(CHUNK_SIZE, self.size - i * CHUNK_SIZE)
            value = self.chunks.get(i)
            if value is None:
                out.append(f"{self.role}: size {self.size} but chunk {i} is missing")
            elif len(value) < need:
                out.append(f"{self.role}: chunk {i} holds {len(value)} bytes, needs {need}")
        return out

    def content(self) -> bytes | None:
        """The file's bytes, or None when it does not exist."""
        if self.size is None:
            return None
        data = b"".join(
            self.chunks.get(i, b"").ljust(CHUNK_SIZE, b"\0")[:CHUNK_SIZE]
            for i in range(chunk_count(self.size))
        )
        return data[: self.size]


def inspect(store: Store, name: str) -> dict[str, FileReport]:
    """Every file of database ``name`` that has a metadata key or chunks, by role."""

    def read(tr: Transaction) -> dict[str, FileReport]:
        out: dict[str, FileReport] = {}
        for role in ROLES:
            keys = FileKeys(name, role)
            meta = tr.get(keys.meta, snapshot=True)
            chunks = {
                keys.chunk_index(k): v for k, v in tr.get_range(*keys.chunks_from(0), snapshot=True)
            }
            if meta is None and not chunks:
                continue
            try:
                size = decode_size(meta) if meta is not None else None
            except ValueError:
                size = None
            out[role] = FileReport(role, size, chunks)
        return out

    return store.transact(read)


def check(store: Store, name: str) -> list[str]:
    """Violations of the v1 layout invariant in database ``name`` (empty when sound)."""

    def bad_meta(tr: Transaction) -> list[str]:
        out = []
        for role in ROLES:
            value = tr.get(FileKeys(name, role).meta, snapshot=True)
            if value is not None:
                try:
                    decode_size(value)
                except ValueError as exc:
                    out.append(f"{role}: {exc}")
        return out

    problems = store.transact(bad_meta)
    for report in inspect(store, name).values():
        problems.extend(report.problems())
    return problems
