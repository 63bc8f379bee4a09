"""``ServerConfig``: the settings of one engine server process, with their defaults and
validation (``sqlkv serve`` builds it from its flags; docs/cli.md)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from sqlkv.errors import ConfigError
from sqlkv.server.frames import DEFAULT_FRAME_BUDGET, PREAUTH_MAX_FRAME
from sqlkv.server.protocol import DEFAULT_MAX_FRAME


@dataclass(frozen=True)
class ServerConfig:
    """Settings of one server. ``port`` 0 picks a free port (read ``EngineServer.port``)."""

    host: str = "127.0.0.1"
    port: int = 7878
    max_frame: int = DEFAULT_MAX_FRAME
    threads: int = 16  # engine calls running at once in this process
    max_connections: int = 1024
    preauth_max_frame: int = PREAUTH_MAX_FRAME  # largest frame before a successful HELLO
    frame_budget_bytes: int = DEFAULT_FRAME_BUDGET  # request frames held at once, all conns
    hello_timeout_s: float = 5.0  # a new connection must finish HELLO within this
    idle_timeout_s: float = 600.0  # a silent connection is closed after this
    frame_timeout_s: float = 60.0  # a frame must arrive whole within this once begun
    drain_timeout_s: float = 20.0  # shutdown waits this long for running requests
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    request_delay_s: float = 0.0  # tests only: hold each engine request this long first
    group_commit: int = 32  # most COMMITs landed in one store transaction (1: each alone)

    def validate(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be within 0..65535, got {self.port}")
        if not 1024 <= self.max_frame <= 1 << 30:
            raise ConfigError(f"max_frame must be within 1024..2^30 bytes, got {self.max_frame}")
        if not 1 <= self.threads <= 1024:
            raise ConfigError(f"threads must be within 1..1024, got {self.threads}")
        if self.max_connections < 1:
            raise ConfigError(f"max_connections must be >= 1, got {self.max_connections}")
        if not 64 <= self.preauth_max_frame <= self.max_frame:
            raise ConfigError(
                f"preauth_max_frame must be within 64..max_frame ({self.max_frame}) bytes, "
                f"got {self.preauth_max_frame}"
            )
        if self.frame_budget_bytes < self.max_frame:
            raise ConfigError(
                f"frame_budget_bytes ({self.frame_budget_bytes}) must be at least max_frame "
                f"({self.max_frame}), or a largest frame could never be read"
            )
        for name in ("hello_timeout_s", "idle_timeout_s", "frame_timeout_s", "drain_timeout_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 1 <= self.group_commit <= 1024:
            raise ConfigError(f"group_commit must be within 1..1024, got {self.group_commit}")
        if self.request_delay_s < 0:
            raise ConfigError(f"request_delay_s must be >= 0, got {self.request_delay_s}")
