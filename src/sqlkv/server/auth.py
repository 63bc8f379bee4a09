"""Who may talk to an engine server, and to which databases.

Three modes, chosen at start:

- ``Auth.open()``: no token needed (every database). For loopback tests and trusted
  networks only; ``sqlkv serve`` warns when it listens beyond loopback this way.
- ``Auth.shared(token)``: one token for every database.
- ``Auth.from_file(path)``: per-database tokens, a JSON object mapping each token to the
  list of databases it reaches, or to ``"*"`` for all of them::

      {"s3cr3t-admin": "*", "t0ken-orders": ["orders", "orders-archive"]}

The token arrives in HELLO. ``grant(token)`` compares it with *every* configured token
using ``hmac.compare_digest`` (no early exit, so timing tells nothing about which token
is close), and answers the ``Grant`` of the one that matched, or None: the server then
answers ``AuthError`` and closes the connection before it reads any data. Each later
request is checked against the grant (``Grant.allows(db)``): a token only ever reaches
the databases it names, and a refused request sees no data.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from pathlib import Path

from sqlkv.errors import AuthError, ConfigError

ALL = "*"


@dataclass(frozen=True)
class Grant:
    """The databases one token reaches: every one (``everything``) or those named."""

    databases: frozenset[str] = frozenset()
    everything: bool = False

    def allows(self, db: str) -> bool:
        return self.everything or db in self.databases

    def check(self, db: str) -> None:
        if not self.allows(db):
            raise AuthError(
                f"this token does not allow database {db!r}; ask for a token that names it"
            )


EVERYTHING = Grant(everything=True)


class Auth:
    def __init__(self, tokens: dict[bytes, Grant] | None) -> None:
        """``tokens`` None means no authentication at all."""
        self._tokens = None if tokens is None else list(tokens.items())

    @classmethod
    def open(cls) -> Auth:
        return cls(None)

    @classmethod
    def shared(cls, token: str) -> Auth:
        if not token:
            raise ConfigError("the token must not be empty")
        return cls({token.encode("utf-8"): EVERYTHING})

    @classmethod
    def from_file(cls, path: str | Path) -> Auth:
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read tokens file {str(path)!r}: {exc.strerror}") from None
        except ValueError as exc:
            raise ConfigError(f"tokens file {str(path)!r} is not valid JSON: {exc}") from None
        return cls(parse_tokens(raw, str(path)))

    @property
    def required(self) -> bool:
        return self._tokens is not None

    def grant(self, token: bytes) -> Grant | None:
        """The grant of ``token``, or None when it matches no configured token."""
        if self._tokens is None:
            return EVERYTHING
        found: Grant | None = None
        for known, grant in self._tokens:
            if hmac.compare_digest(known, token):
                found = grant
        return found


def parse_tokens(raw: object, where: str) -> dict[bytes, Grant]:
    """Validate the tokens file's JSON: ``{token: "*" | [db, ...]}``."""
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(
            f"tokens file {where!r} must hold a non-empty JSON object mapping each token "
            'to a list of database names or to "*", like {"t0ken": ["orders"]}'
        )
    tokens: dict[bytes, Grant] = {}
    for token, dbs in raw.items():
        if not token:
            raise ConfigError(f"tokens file {where!r} has an empty token")
        if dbs == ALL:
            tokens[token.encode("utf-8")] = EVERYTHING
        elif isinstance(dbs, list) and dbs and all(isinstance(d, str) and d for d in dbs):
            tokens[token.encode("utf-8")] = Grant(frozenset(dbs))
        else:
            raise ConfigError(
                f'tokens file {where!r}: a token must map to "*" or to a non-empty list '
                f"of database names, got {dbs!r}"
            )
    return tokens
