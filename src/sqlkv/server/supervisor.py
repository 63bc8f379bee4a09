"""``sqlkv serve --workers N``: one supervisor process and N worker processes, so that one
server uses every core (one Python process runs Python on one core at a time).

- The supervisor binds the listening socket and accepts; it passes each accepted
  connection to the next live worker, round robin, over a Unix socket (``SCM_RIGHTS``).
  A connection stays on its worker for its life. The supervisor runs no engine and reads
  no frame.
- Each worker (``worker.py``) is a whole server: its own ``Engine`` over the shared store,
  its own threads, frame budget and connection limit. Workers share nothing but the
  store, exactly like separate nodes, so every fence is the store's: a commit that reaches
  a worker with a stale head or generation is refused there as it would be on another
  node. Hence N > 1 needs a store several processes can open (a directory, lmdb://,
  postgresql://, etcd://); ``memory://`` lives in one process.
- A worker that dies (a crash, a SIGKILL) is replaced, after a pause that grows while
  replacements keep dying young (``RESTART_PAUSES``); its clients' connections broke and
  they reconnect (commits settle by commit id as after any lost answer).
- SIGTERM or SIGINT: the supervisor stops accepting, sends SIGTERM to every worker (each
  drains: running requests finish, new ones answer ``ServerShuttingDown``), waits for
  them (``drain_timeout_s`` + ``EXIT_GRACE_S``), SIGKILLs what is left and exits.
  A worker dies with its supervisor (``PR_SET_PDEATHSIG``), so a SIGKILLed supervisor
  frees its port at once.
- Metrics: ``/metrics`` on the supervisor's ``--metrics`` address returns every worker's
  series summed (``metrics_merge.py``): counters and histograms add up, so rates and
  quantiles read as for one server; ``?worker=I`` returns worker I's own series. Each
  worker serves its series on a loopback socket the supervisor bound for it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import selectors
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

from sqlkv.logs import failure_fields
from sqlkv.server.http import MetricsHttpServer
from sqlkv.server.metrics_merge import merge_expositions, supervisor_series
from sqlkv.server.worker import WORKER_COMMAND, WorkerSpec, address_error

log = logging.getLogger("sqlkv.server")

RESTART_PAUSES = (0.0, 0.5, 1.0, 2.0, 5.0)  # after 0, 1, 2, ... workers died young
YOUNG_S = 10.0  # a worker that dies within this of its start died young
EXIT_GRACE_S = 10.0
BIND_RETRY_S = 3.0  # a port held by the dying workers of a killed supervisor frees soon
SCRAPE_TIMEOUT_S = 5.0


@dataclass
class _Slot:
    index: int
    channel: socket.socket | None = None  # the supervisor's end
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restarts: int = 0
    young_deaths: int = 0
    due: float = 0.0  # when a dead worker may be started again
    metrics_sock: socket.socket | None = None
    metrics_port: int = 0
    connections: int = 0  # passed to it so far


def bind_listener(host: str, port: int) -> socket.socket:
    deadline = time.monotonic() + BIND_RETRY_S
    while True:
        try:
            return socket.create_server((host, port), backlog=1024, reuse_port=False)
        except OSError as exc:
            if exc.errno != 98 or time.monotonic() >= deadline:  # EADDRINUSE
                raise
            time.sleep(0.1)


class Supervisor:
    def __init__(
        self,
        spec: WorkerSpec,
        workers: int,
        *,
        metrics_at: tuple[str, int] | None = None,
    ) -> None:
        self.spec = spec
        self.metrics_at = metrics_at
        self.slots = [_Slot(i) for i in range(workers)]
        self.stopping = False
        self._next = 0
        self.listener: socket.socket | None = None
        self.http: MetricsHttpServer | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Bind (``CommandFailed`` naming the address when taken) and start the workers."""
        host, port = self.spec.config.host, self.spec.config.port
        try:
            self.listener = bind_listener(host, port)
        except OSError as exc:
            raise address_error("--listen", host, port, exc) from None
        self.listener.setblocking(False)
        if self.metrics_at is not None:
            for slot in self.slots:
                slot.metrics_sock = socket.create_server(("127.0.0.1", 0))
                slot.metrics_port = slot.metrics_sock.getsockname()[1]
            try:
                self.http = MetricsHttpServer(
                    *self.metrics_at, self.render_metrics, lambda: self.stopping
                )
            except OSError as exc:
                raise address_error("--metrics", *self.metrics_at, exc) from None
            self.http.start()
        for slot in self.slots:
            self._spawn(slot)

    @property
    def port(self) -> int:
        assert self.listener is not None
        return int(self.listener.getsockname()[1])

    def run(self) -> None:
        """Accept and hand out connections, replace dead workers, until SIGTERM/SIGINT;
        then drain the workers and return."""
        assert self.listener is not None
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        with selectors.DefaultSelector() as sel:
            sel.register(self.listener, selectors.EVENT_READ)
            while not self.stopping:
                if sel.select(0.2):
                    self._accept()
                self._watch()
        self._drain()

    def _on_signal(self, signum: int, frame: object) -> None:
        if not self.stopping:
            log.info("shutting down: draining %d workers", len(self.slots))
        self.stopping = True

    def close(self) -> None:
        if self.http is not None:
            self.http.stop()
        for sock in [self.listener, *(s.channel for s in self.slots)]:
            if sock is not None:
                sock.close()
        for slot in self.slots:
            if slot.metrics_sock is not None:
                slot.metrics_sock.close()

    # ------------------------------------------------------------------ workers

    def _spawn(self, slot: _Slot) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        fds = [theirs.fileno()]
        metrics_fd = None
        if slot.metrics_sock is not None:
            metrics_fd = slot.metrics_sock.fileno()
            fds.append(metrics_fd)
        spec = replace(
            self.spec,
            index=slot.index,
            channel_fd=theirs.fileno(),
            metrics_fd=metrics_fd,
            parent_pid=os.getpid(),
        )
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[2])  # where this sqlkv was imported from
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
        proc = subprocess.Popen(
            [sys.executable, "-c", WORKER_COMMAND],
            stdin=subprocess.PIPE,
            pass_fds=fds,
            env=env,
        )
        theirs.close()
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(pickle.dumps(spec))
            proc.stdin.close()
        if slot.channel is not None:
            slot.channel.close()
        slot.channel, slot.proc, slot.started = ours, proc, time.monotonic()

    def _watch(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            proc = slot.proc
            if proc is not None and proc.poll() is not None:
                young = now - slot.started < YOUNG_S
                slot.young_deaths = slot.young_deaths + 1 if young else 0
                pause = RESTART_PAUSES[min(slot.young_deaths, len(RESTART_PAUSES) - 1)]
                log.warning(
                    "worker %d (pid %d) exited with status %s; starting another in %.1f s",
                    slot.index,
                    proc.pid,
                    proc.returncode,
                    pause,
                    extra={"worker": slot.index, "status": proc.returncode},
                )
                slot.proc, slot.due = None, now + pause
                if slot.channel is not None:
                    slot.channel.close()
                    slot.channel = None
            if slot.proc is None and now >= slot.due and not self.stopping:
                slot.restarts += 1
                self._spawn(slot)

    def _accept(self) -> None:
        assert self.listener is not None
        while True:
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors, a reset before accept: go on
                log.warning("accept failed: %s", exc, extra=failure_fields(exc))
                return
            try:
                self._pass(conn)
            finally:
                conn.close()  # the worker holds its own descriptor now

    def _pass(self, conn: socket.socket) -> None:
        """Give ``conn`` to the next live worker; close it when none is up."""
        for _ in range(len(self.slots)):
            slot = self.slots[self._next]
            self._next = (self._next + 1) % len(self.slots)
            if slot.channel is None or slot.proc is None:
                continue
            try:
                socket.send_fds(slot.channel, [b"c"], [conn.fileno()])
            except OSError:
                continue  # it died: _watch replaces it
            slot.connections += 1
            return

    def _drain(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        live = [s.proc for s in self.slots if s.proc is not None and s.proc.poll() is None]
        for proc in live:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.spec.config.drain_timeout_s + EXIT_GRACE_S
        for proc in live:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker pid %d did not stop in time: killed", proc.pid)
                proc.kill()
                proc.wait()

    # ------------------------------------------------------------------ metrics

    def render_metrics(self, query: str) -> bytes:
        texts: list[str] = []
        failed = 0
        wanted = dict(p.partition("=")[::2] for p in query.split("&") if p).get("worker")
        for slot in self.slots:
            if wanted is not None and wanted != str(slot.index):
                continue
            url = f"http://127.0.0.1:{slot.metrics_port}/metrics"
            try:
                with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT_S) as resp:
                    texts.append(resp.read().decode())
            except OSError:
                failed += 1
        if wanted is not None:
            return "".join(texts).encode()
        up = sum(1 for s in self.slots if s.proc is not None and s.proc.poll() is None)
        own = supervisor_series(len(self.slots), up, sum(s.restarts for s in self.slots), failed)
        return (merge_expositions(texts) + own).encode()
