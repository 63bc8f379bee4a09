"""The server's HTTP side door: ``GET /metrics`` (Prometheus text format) and
``GET /healthz`` (200 ``ok`` while serving, 503 ``draining`` while shutting down).

A stdlib ``ThreadingHTTPServer`` on its own daemon thread: nothing here touches the asyncio
loop, and a slow scraper cannot delay an engine request. ``render(query)`` produces the
``/metrics`` body: one registry's series (``registry_render``), or, in a supervisor, the
workers' series merged (``supervisor.py``). ``sock``: serve on a socket bound by a parent
process (a worker's private metrics socket) instead of binding ``host``:``port``.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

Render = Callable[[str], bytes]  # the query string -> the /metrics body


def registry_render(registry: CollectorRegistry) -> Render:
    return lambda query: generate_latest(registry)


class MetricsHttpServer:
    def __init__(
        self,
        host: str,
        port: int,
        render: Render,
        draining: Callable[[], bool],
        *,
        sock: socket.socket | None = None,
    ) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                if path == "/metrics":
                    outer._send(self, 200, render(query), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    if draining():
                        outer._send(self, 503, b"draining\n", "text/plain")
                    else:
                        outer._send(self, 200, b"ok\n", "text/plain")
                else:
                    outer._send(self, 404, b"not found: try /metrics or /healthz\n", "text/plain")

            def log_message(self, format: str, *args: object) -> None:
                pass  # scrapes every few seconds would flood the log

        if sock is None:
            self._httpd = ThreadingHTTPServer((host, port), Handler)
        else:
            self._httpd = ThreadingHTTPServer((host, port), Handler, bind_and_activate=False)
            self._httpd.socket.close()
            self._httpd.socket = sock
            self._httpd.server_address = sock.getsockname()
            self._httpd.server_activate()
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="sqlkv-metrics", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
