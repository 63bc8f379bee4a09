"""Fixtures for the LTX codec tests: the shared reference vectors and their page rules.

The vectors live in ``<repo>/../shared/ltx-vectors`` (``/work/shared`` for ``/work/main``); set
``SQLKV_SHARED_DIR`` to use another shared directory. A missing directory fails the tests with a
message instead of skipping them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import crcmod
import pytest

from sqlkv.ltx import HEADER_SIZE, LtxFile

REPO_ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def vectors_dir() -> Path:
    override = os.environ.get("SQLKV_SHARED_DIR")
    shared = Path(override) if override else REPO_ROOT / ".." / "shared"
    path = (shared / "ltx-vectors").resolve()
    if not (path / "manifest.json").is_file():
        pytest.fail(
            f"LTX test vectors not found: {path}/manifest.json does not exist. Put the shared "
            "directory next to the repository or set SQLKV_SHARED_DIR to it.",
            pytrace=False,
        )
    return path


@functools.cache
def manifest() -> dict[str, Any]:
    result: dict[str, Any] = json.loads((vectors_dir() / "manifest.json").read_text())
    return result


def page_from_rule(rule: dict[str, Any], page_size: int) -> bytes:
    """Build a page from a manifest rule (see the manifest's "notes")."""
    kind = rule["kind"]
    if kind == "fill":
        return bytes([rule.get("byte", 0)]) * page_size
    if kind == "ramp":
        start = rule["byte"]
        return bytes((start + i) % 256 for i in range(page_size))
    if kind == "sha256ctr":
        out = bytearray()
        k = 0
        while len(out) < page_size:
            out += hashlib.sha256(f"{rule['arg']}:{k}".encode("ascii")).digest()
            k += 1
        return bytes(out[:page_size])
    raise AssertionError(f"unknown page rule kind {kind!r} in the manifest")


# Independent of sqlkv.ltx.checksum on purpose: the file checksum is recomputed from raw bytes.
_CRC64_GO_ISO = crcmod.mkCrcFun(0x1000000000000001B, initCrc=0, rev=True, xorOut=(1 << 64) - 1)


def independent_file_checksum(data: bytes, decoded: LtxFile) -> int:
    """The FileChecksum ``data`` should carry, recomputed as the format note describes: header,
    each frame's page header (+ size field for block frames) and uncompressed page, then every
    byte from the zero page header to the end of the trailer's PostApplyChecksum."""
    crc = _CRC64_GO_ISO(data[:HEADER_SIZE])
    end = HEADER_SIZE
    for entry, (_, page) in zip(decoded.index, decoded.pages, strict=True):
        block = data[entry.offset + 4 : entry.offset + 6] == b"\x00\x01"
        covered = data[entry.offset : entry.offset + (10 if block else 6)]
        crc = _CRC64_GO_ISO(page, _CRC64_GO_ISO(covered, crc))
        end = entry.offset + entry.size
    return (1 << 63) | int(_CRC64_GO_ISO(data[end : len(data) - 8], crc))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``valid_vector`` and ``invalid_vector`` over the manifest entries."""
    for name, valid in (("valid_vector", True), ("invalid_vector", False)):
        if name in metafunc.fixturenames:
            entries = [v for v in manifest()["vectors"] if v["valid"] is valid]
            metafunc.parametrize(name, entries, ids=[v["file"] for v in entries])


@pytest.fixture(scope="session")
def vector_files() -> dict[str, bytes]:
    """Every vector file's bytes, by file name."""
    return {v["file"]: (vectors_dir() / v["file"]).read_bytes() for v in manifest()["vectors"]}


@pytest.fixture(scope="session")
def valid_vector_files(vector_files: dict[str, bytes]) -> dict[str, bytes]:
    valid = {v["file"] for v in manifest()["vectors"] if v["valid"]}
    return {name: data for name, data in vector_files.items() if name in valid}


@pytest.fixture(scope="session")
def ltx_manifest() -> dict[str, Any]:
    return manifest()


@pytest.fixture(scope="session")
def make_page() -> Any:
    """``make_page(rule, page_size) -> bytes``, the manifest's page rules."""
    return page_from_rule


@pytest.fixture(scope="session")
def ltx_vectors_dir() -> Path:
    return vectors_dir()


@pytest.fixture(scope="session")
def file_checksum_of() -> Any:
    """``file_checksum_of(data, decoded) -> int``: FileChecksum recomputed independently."""
    return independent_file_checksum
