"""Thousands of hostile frames against a real server: random bytes, random types and
bodies, truncated and oversized frames, wrong versions and magic, mutated requests,
requests before HELLO, mid-frame disconnects.

Each bad connection must get only ERROR answers (or a HELLO/HEALTH answer to a valid
HELLO/HEALTH) and then be closed; a well-behaved client keeps being served, correctly,
during and after; and nothing is written (the store's write counter and a dump of the
whole store are unchanged). The fuzzing token reaches only a database no mutation can
name, so even a mutation that decodes to a valid request is refused.
"""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
from pathlib import Path

from server_support import HOST, ServerFactory, ServerProc, hello_frame, read_frame

from sqlkv.server import RemoteEngine
from sqlkv.server.protocol import (
    ANSWER_BIT,
    HEADER,
    LENGTH,
    CommitRequest,
    FinalizeRequest,
    GetPagesRequest,
    HeadRequest,
    Hello,
    MsgType,
    OpenRequest,
    StageRequest,
    encode_request,
    frame,
)
from sqlkv.store.embedded import EmbeddedStore

CASES = 5000
TIME_LIMIT_S = 120.0
PAGE = 4096
ALLOWED_ANSWERS = {MsgType.ERROR, MsgType.HELLO | ANSWER_BIT, MsgType.HEALTH | ANSWER_BIT}


def valid_requests(gen: int) -> list[bytes]:
    page = b"p" * PAGE
    return [
        encode_request(1, r)
        for r in (
            OpenRequest("good", (1, 2), 8192, True),
            GetPagesRequest("good", gen, (1, 2, 3)),
            CommitRequest("good", gen, 2, 3, b"c" * 16, {1: page, 2: page}),
            StageRequest("good", gen, None, 0, {3: page}),
            FinalizeRequest("good", gen, 2, 3, 3, b"f" * 16),
            HeadRequest("good"),
        )
    ]


def mutate(r: random.Random, data: bytes) -> bytes:
    raw = bytearray(data)
    for _ in range(r.randint(1, 6)):
        choice = r.random()
        i = r.randrange(len(raw))
        if choice < 0.6:
            raw[i] = r.randrange(256)
        elif choice < 0.8 and len(raw) > LENGTH.size + HEADER.size:
            del raw[i]
        else:
            raw.insert(i, r.randrange(256))
    return bytes(raw)


def hostile_bytes(r: random.Random, gen: int, valid: list[bytes]) -> bytes:
    """One connection's worth of bytes; the fuzz token's HELLO may come first."""
    fuzz_hello = hello_frame("fuzz")
    kind = r.randrange(12)
    if kind == 0:  # noise
        return r.randbytes(r.randint(1, 300))
    if kind == 1:  # a well-framed message of any type with a random body
        return frame(r.randrange(256), r.getrandbits(32), r.randbytes(r.randint(0, 200)))
    if kind == 2:  # oversized length
        return LENGTH.pack(r.randint(64 * 1024 * 1024 + 1, 0xFFFFFFFF)) + r.randbytes(20)
    if kind == 3:  # shorter than a header
        return LENGTH.pack(r.randint(0, HEADER.size - 1)) + r.randbytes(4)
    if kind == 4:  # mid-frame disconnect
        whole = r.choice(valid)
        return whole[: r.randint(1, len(whole) - 1)]
    if kind == 5:  # a version nobody speaks
        lo = r.randint(2, 0xFFFF)
        return encode_request(1, Hello(b"good", "fuzz", min_version=lo, max_version=lo))
    if kind == 6:  # not our magic
        return encode_request(1, Hello(b"good", "fuzz", magic=r.randbytes(4)))
    if kind == 7:  # valid requests before HELLO (with the good database)
        return r.choice(valid)
    if kind == 8:  # HELLO twice
        return fuzz_hello + fuzz_hello + r.choice(valid)
    if kind == 9:  # after HELLO: mutated valid requests
        return fuzz_hello + b"".join(mutate(r, r.choice(valid)) for _ in range(r.randint(1, 4)))
    if kind == 10:  # after HELLO: valid requests for a database the token does not reach
        return fuzz_hello + b"".join(r.choice(valid) for _ in range(r.randint(1, 3)))
    # after HELLO: random well-framed garbage, then noise
    return fuzz_hello + frame(r.randrange(256), 9, r.randbytes(r.randint(0, 64))) + r.randbytes(9)


def attack(port: int, data: bytes) -> list[int]:
    """Send ``data``, half-close, and read every answer until the server closes."""
    types: list[int] = []
    with socket.create_connection((HOST, port), timeout=20) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            return types  # the server closed first (it refused an early frame)
        while (answer := read_frame(s)) is not None:
            types.append(answer[0])
            if len(types) > 20:
                raise AssertionError("the server keeps answering a hostile connection")
    return types


def dump(path: Path) -> list[tuple[bytes, bytes]]:
    store = EmbeddedStore(path)
    try:
        return store.transact(lambda tr: tr.get_range(b"", b"\xff" * 16))
    finally:
        store.close()


def test_hostile_frames_are_refused_and_change_nothing(
    servers: ServerFactory, store_dir: str, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"good": "*", "fuzz": ["no-mutation-names-this"]}))
    server: ServerProc = servers(store_dir, tokens_file=tokens, extra=("--no-compaction",))
    good = RemoteEngine(server.url, token="good")
    gen = good.open("good").head.generation
    pages = {p: os.urandom(PAGE) for p in (1, 2, 3)}
    good.commit("good", gen, 1, pages, 3, commit_id=os.urandom(16))
    before = dump(Path(store_dir))
    writes_before = server.metric("sqlkv_store_writes_total")

    stop = threading.Event()
    served: list[int] = []
    failures: list[BaseException] = []

    def well_behaved() -> None:
        n = 0
        while not stop.is_set() and n < 100_000:
            try:
                assert good.get_pages("good", gen, [1, 2, 3]).pages == pages
                assert good.head("good").head_txid == 2
            except BaseException as exc:
                failures.append(exc)
                return
            n += 1
            served.append(n)

    worker = threading.Thread(target=well_behaved)
    worker.start()
    r = random.Random(20_240_607)
    valid = valid_requests(gen)
    start = time.monotonic()
    cases = 0
    seen: set[int] = set()
    try:
        while cases < CASES and time.monotonic() - start < TIME_LIMIT_S:
            answers = attack(server.port, hostile_bytes(r, gen, valid))
            assert set(answers) <= ALLOWED_ANSWERS, answers
            seen.update(answers)
            cases += 1
    finally:
        stop.set()
        worker.join(timeout=30)
    assert not failures, failures[0]
    assert cases >= 1000, f"only {cases} cases ran in {TIME_LIMIT_S}s"
    assert MsgType.ERROR in seen
    assert len(served) > 10  # the good client was served throughout
    assert server.alive()
    # still serving, still correct, and nothing was written
    assert good.get_pages("good", gen, [1, 2, 3]).pages == pages
    assert server.metric("sqlkv_store_writes_total") == writes_before
    assert dump(Path(store_dir)) == before
    rejects = {
        dict(labels)["reason"]
        for (name, labels), value in server.metrics().items()
        if name == "sqlkv_server_frame_rejects_total" and value
    }
    assert {"oversized", "short", "truncated", "malformed", "no_hello", "version"} <= rejects
    assert server.metric("sqlkv_server_auth_refusals_total", stage="database") > 0
    good.close()
