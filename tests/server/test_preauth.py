"""Before authentication the server holds a few KiB per connection for a few seconds: a
large pre-HELLO frame is refused on its length prefix, a silent peer is dropped, and the
server's memory stays flat however much an unauthenticated peer sends."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from server_support import HOST, ServerFactory, hello_frame, is_error, read_frame

from sqlkv.server.client import RemoteEngine
from sqlkv.server.protocol import LENGTH

MiB = 1024 * 1024
TOKEN = "s3cr3t"


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def flood(port: int, frame_bytes: int, sent: list[int]) -> None:
    """Announce a ``frame_bytes`` frame before HELLO and send as much of it as accepted."""
    piece = b"\xab" * MiB
    total = 0
    try:
        with socket.create_connection((HOST, port), timeout=30) as s:
            s.sendall(LENGTH.pack(frame_bytes))
            while total < frame_bytes:
                s.sendall(piece)
                total += len(piece)
    except OSError:
        pass  # the server closed the connection: what it should do
    sent.append(total)


def test_preauth_frames_leave_server_memory_flat(servers: ServerFactory, store_dir: str) -> None:
    server = servers(store_dir, token=TOKEN)
    pids = server.workers() or [server.proc.pid]  # the processes that read frames
    with RemoteEngine(server.url, TOKEN) as engine:  # warm up: the engine imported and used
        engine.open("warm")
    before = {pid: status_kib(pid, "VmRSS") for pid in pids}
    sent: list[int] = []
    threads = [threading.Thread(target=flood, args=(server.port, 60 * MiB, sent)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    grew = {pid: status_kib(pid, "VmHWM") - before[pid] for pid in pids}
    grew_mib = max(grew.values()) / 1024
    print(
        f"server RSS peak grew by at most {grew_mib:.1f} MiB in any of {len(pids)} "
        f"process(es) after 8 x 60 MiB pre-auth frames; sent {sorted(sent)}"
    )
    assert grew_mib < 50, f"server RSS grew by {grew_mib:.1f} MiB"
    assert server.metric("sqlkv_server_frame_rejects_total", reason="preauth_oversized") == 8
    # authenticated clients are served as before, large frames included
    with RemoteEngine(server.url, TOKEN) as engine:
        head = engine.open("after").head
        page = bytes(range(256)) * 16
        pages = {n: page for n in range(1, 2049)}  # 8 MiB in one frame
        done = engine.commit("after", head.generation, head.head_txid, pages, 2048)
        assert done.head.db_size_pages == 2048
        got = engine.get_pages("after", head.generation, [1, 2048]).pages
        assert got == {1: page, 2048: page}


def test_preauth_oversized_frame_answers_why(servers: ServerFactory, store_dir: str) -> None:
    server = servers(store_dir, token=TOKEN)
    with socket.create_connection((HOST, server.port), timeout=10) as s:
        s.sendall(LENGTH.pack(5000))
        answer = read_frame(s)
        assert is_error(answer)
        assert answer is not None and b"send HELLO first" in answer[2]
        assert read_frame(s) is None  # and closed


def test_silent_unauthenticated_connection_is_dropped(
    servers: ServerFactory, store_dir: str
) -> None:
    server = servers(store_dir, token=TOKEN)
    start = time.monotonic()
    with socket.create_connection((HOST, server.port), timeout=30) as s:
        s.sendall(LENGTH.pack(100))  # a frame begun and never finished
        assert read_frame(s) is None
    waited = time.monotonic() - start
    assert waited < 15, f"the server kept a silent peer {waited:.1f}s"
    # a HELLO that arrives in time still works
    with socket.create_connection((HOST, server.port), timeout=10) as s:
        s.sendall(hello_frame(TOKEN))
        assert not is_error(read_frame(s))
