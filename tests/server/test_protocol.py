"""The protocol in process: every message and every error code round-trips, and any
malformed body is a ``ProtocolError`` (never another exception, never a partial message)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sqlkv.engine.api import CommitResult, OpenResult, PagesResult, StageResult
from sqlkv.engine.head import Head
from sqlkv.errors import (
    AuthError,
    CommitOutcomeUnknown,
    CommitTooLarge,
    ConfigError,
    CorruptionError,
    DatabaseNotFound,
    FenceMismatch,
    InvalidRequest,
    LimitExceeded,
    ProtocolError,
    QuotaExceeded,
    RetriesExhausted,
    ServerFault,
    ServerShuttingDown,
    SqlkvError,
    StoreUnavailable,
    TransportError,
)
from sqlkv.server.auth import Auth, Grant
from sqlkv.server.client import Node, parse_engine_url
from sqlkv.server.codec import Reader, Writer
from sqlkv.server.codes import (
    CODES,
    code_for,
    read_error,
    write_error,
)
from sqlkv.server.protocol import (
    LENGTH,
    CommitRequest,
    FinalizeRequest,
    GetPagesRequest,
    HeadRequest,
    Health,
    HealthOk,
    Hello,
    HelloOk,
    MsgType,
    OpenRequest,
    Request,
    StageRequest,
    decode_answer,
    decode_request,
    encode_answer,
    encode_error,
    encode_request,
    split_header,
)

HEAD = Head(3, 10, 11, 4, 20, storage_used=1234, last_commit_id=b"k" * 16, delta_count=2)
PG = b"\x01" * 4096

REQUESTS: list[Request] = [
    Hello(b"tok", "me"),
    Health(),
    OpenRequest("db", (1, 2, 3), 65536, True),
    OpenRequest("d\u00e9j\u00e0", (), None, False),
    GetPagesRequest("db", 3, (1, 5, 9)),
    CommitRequest("db", 3, 10, 20, b"i" * 16, {1: PG, 7: PG}),
    CommitRequest("db", 3, 10, 20, None, {}),
    StageRequest("db", 3, None, 0, {2: PG}),
    StageRequest("db", 3, 12, 4, {2: PG}),
    FinalizeRequest("db", 3, 10, 12, 20, b"i" * 16),
    FinalizeRequest("db", 3, 10, 12, 20, None),
    HeadRequest("db"),
]


def payload(frame: bytes) -> bytes:
    (length,) = LENGTH.unpack_from(frame)
    assert length == len(frame) - LENGTH.size
    return frame[LENGTH.size :]


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: type(r).__name__)
def test_every_request_round_trips(request_: Request) -> None:
    msg_type, rid, body = split_header(payload(encode_request(77, request_)))
    assert rid == 77
    assert decode_request(msg_type, body) == request_


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: type(r).__name__)
def test_every_truncated_request_is_a_protocol_error(request_: Request) -> None:
    msg_type, _, body = split_header(payload(encode_request(1, request_)))
    for cut in range(len(body)):
        with pytest.raises(ProtocolError):
            decode_request(msg_type, bytes(body[:cut]))
    with pytest.raises(ProtocolError):
        decode_request(msg_type, bytes(body) + b"\x00")  # trailing bytes


ANSWERS = [
    (MsgType.HELLO, HelloOk(1, 1 << 20, "n")),
    (MsgType.HEALTH, HealthOk(True, 2, 3, "n")),
    (MsgType.OPEN, OpenResult(HEAD, {1: PG})),
    (MsgType.GET_PAGES, PagesResult(HEAD, {1: PG, 30: None})),
    (MsgType.COMMIT, CommitResult(HEAD, True)),
    (MsgType.COMMIT_FINALIZE, CommitResult(HEAD, False)),
    (MsgType.COMMIT_STAGE, StageResult(12, 3)),
    (MsgType.HEAD, HEAD),
]


@pytest.mark.parametrize(("kind", "answer"), ANSWERS, ids=lambda a: str(a)[:20])
def test_every_answer_round_trips(kind: MsgType, answer: object) -> None:
    msg_type, rid, body = split_header(payload(encode_answer(5, kind, answer)))  # type: ignore[arg-type]
    assert rid == 5
    assert decode_answer(kind, msg_type, body) == answer


def test_an_answer_of_the_wrong_type_is_a_protocol_error() -> None:
    msg_type, _, body = split_header(payload(encode_answer(5, MsgType.HEAD, HEAD)))
    with pytest.raises(ProtocolError):
        decode_answer(MsgType.COMMIT, msg_type, body)


ERRORS: list[SqlkvError] = [
    FenceMismatch("fenced", HEAD),
    FenceMismatch("fenced without head"),
    CommitTooLarge(9_000_000, 8_388_608),
    QuotaExceeded("db", 2000, 1000),
    DatabaseNotFound("nope"),
    LimitExceeded("value", 200_000, 100_000),
    InvalidRequest("page 0"),
    AuthError("no"),
    ProtocolError("bad"),
    StoreUnavailable("down"),
    ConfigError("bad setting"),
    ServerShuttingDown("bye"),
    ServerFault("bug"),
    CorruptionError("db", "SHARD", "shard 3 chunk 1", "checksum mismatch in its 100 bytes"),
]


@pytest.mark.parametrize("exc", ERRORS, ids=lambda e: type(e).__name__)
def test_error_answers_carry_class_fields_and_message(exc: SqlkvError) -> None:
    w = Writer()
    write_error(w, exc)
    got = read_error(Reader(w.getvalue()))
    assert type(got) is type(exc)
    assert str(got) == str(exc)
    assert vars(got) == vars(exc)


def test_retries_exhausted_keeps_attempts() -> None:
    w = Writer()
    write_error(w, RetriesExhausted(30, ValueError("x")))
    got = read_error(Reader(w.getvalue()))
    assert isinstance(got, RetriesExhausted) and got.attempts == 30


def test_error_code_table_is_one_to_one_and_unknown_exceptions_are_server_faults() -> None:
    assert len(set(CODES.values())) == len(CODES)
    for code, cls in CODES.items():
        assert code_for(cls.__new__(cls)) == code
    assert CODES[code_for(KeyError("x"))] is ServerFault
    msg_type, _, body = split_header(payload(encode_error(9, KeyError("x"))))
    with pytest.raises(ServerFault, match="internal server error"):
        decode_answer(MsgType.HEAD, msg_type, body)


def test_unknown_error_code_from_a_newer_server_is_a_plain_sqlkv_error() -> None:
    w = Writer().u16(999).text("new thing").u64(5)
    got = read_error(Reader(w.getvalue()))
    assert type(got) is SqlkvError and "new thing" in str(got)


def test_network_only_errors_say_whether_to_retry() -> None:
    assert ServerShuttingDown("x").retryable and isinstance(ServerShuttingDown("x"), TransportError)
    unknown = CommitOutcomeUnknown("x")
    assert not unknown.retryable and isinstance(unknown, TransportError)


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 255), st.binary(max_size=300))
def test_random_bodies_only_ever_raise_protocol_error(msg_type: int, body: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode_request(msg_type, body)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(REQUESTS), st.data())
def test_mutated_requests_decode_or_raise_protocol_error(
    request_: Request, data: st.DataObject
) -> None:
    msg_type, _, body = split_header(payload(encode_request(1, request_)))
    raw = bytearray(body)
    for _ in range(data.draw(st.integers(1, 4))):
        if raw:
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(ProtocolError):
        decode_request(msg_type, bytes(raw))


def test_hostile_counts_never_allocate_past_the_frame() -> None:
    body = Writer().string("db").u64(1).u32(0xFFFFFFFF).getvalue()
    with pytest.raises(ProtocolError, match="do not fit"):
        decode_request(MsgType.GET_PAGES, body)


# --------------------------------------------------------------------------- auth and URLs


def test_shared_token_grants_everything_and_refuses_others() -> None:
    auth = Auth.shared("s3cret")
    assert auth.grant(b"s3cret") == Grant(everything=True)
    assert auth.grant(b"s3cre") is None
    assert auth.grant(b"") is None


def test_tokens_file_grants_named_databases_only(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"admin": "*", "ord": ["orders", "archive"]}))
    auth = Auth.from_file(path)
    grant = auth.grant(b"ord")
    assert grant is not None and grant.allows("orders") and not grant.allows("users")
    with pytest.raises(AuthError, match="does not allow database 'users'"):
        grant.check("users")
    assert auth.grant(b"admin") == Grant(everything=True)
    assert auth.grant(b"nobody") is None


@pytest.mark.parametrize(
    "content", ["[]", "{}", '{"t": []}', '{"t": "db"}', '{"t": [1]}', '{"": "*"}', "not json"]
)
def test_tokens_file_refuses_bad_shapes(tmp_path: Path, content: str) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match="tokens file"):
        Auth.from_file(path)


def test_no_auth_grants_everything() -> None:
    assert Auth.open().grant(b"anything") == Grant(everything=True)


def test_engine_url_lists_nodes_in_order() -> None:
    assert parse_engine_url("sqlkv://a:1,b:2,[::1]:3,c") == [
        Node("a", 1),
        Node("b", 2),
        Node("::1", 3),
        Node("c", 7878),
    ]


@pytest.mark.parametrize("url", ["http://a:1", "sqlkv://", "sqlkv://a:x", "sqlkv://a:0", "a:1"])
def test_bad_engine_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        parse_engine_url(url)
