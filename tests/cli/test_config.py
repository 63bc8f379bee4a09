"""``ClientConfig``: flag > environment > default, resolved at call time, validated."""

from __future__ import annotations

import pytest

from sqlkv.config import DEFAULT_STORE_URL, ClientConfig
from sqlkv.errors import ConfigError

ENGINE = "sqlkv://127.0.0.1:7878"


def test_defaults_apply_with_an_empty_environment() -> None:
    cfg = ClientConfig.from_env({})
    assert cfg == ClientConfig(store=DEFAULT_STORE_URL, cache_size=64 * 1024 * 1024)
    assert cfg.engine is None and cfg.token is None and cfg.format == "v2"


def test_environment_beats_defaults_and_flags_beat_environment() -> None:
    env = {"SQLKV_STORE": "/env/store", "SQLKV_ENGINE": ENGINE, "SQLKV_TOKEN": "env-token"}
    assert ClientConfig.from_env(env).store == "/env/store"
    assert ClientConfig.from_env(env).engine == ENGINE
    assert ClientConfig.from_env(env).token == "env-token"
    cfg = ClientConfig.from_env(env, engine="sqlkv://other:1", token="flag-token")
    assert (cfg.engine, cfg.token) == ("sqlkv://other:1", "flag-token")


def test_none_overrides_mean_not_given() -> None:
    cfg = ClientConfig.from_env({"SQLKV_STORE": "/env"}, store=None, engine=None, token=None)
    assert cfg.store == "/env"


def test_empty_environment_variables_count_as_unset() -> None:
    cfg = ClientConfig.from_env({"SQLKV_STORE": "", "SQLKV_ENGINE": "", "SQLKV_TOKEN": ""})
    assert (cfg.store, cfg.engine, cfg.token) == (DEFAULT_STORE_URL, None, None)


def test_the_environment_is_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQLKV_STORE", "/first")
    assert ClientConfig.from_env().store == "/first"
    monkeypatch.setenv("SQLKV_STORE", "/second")
    assert ClientConfig.from_env().store == "/second"


def test_an_explicit_store_beats_an_engine_and_token_from_the_environment() -> None:
    env = {"SQLKV_ENGINE": ENGINE, "SQLKV_TOKEN": "t"}
    cfg = ClientConfig.from_env(env, store="/flag/store")
    assert (cfg.store, cfg.engine, cfg.token) == ("/flag/store", None, None)


def test_an_engine_wins_when_both_come_from_the_environment() -> None:
    cfg = ClientConfig.from_env({"SQLKV_STORE": "/env", "SQLKV_ENGINE": ENGINE})
    assert cfg.engine == ENGINE
    assert cfg.target == ENGINE


def test_explicit_store_and_engine_together_are_refused() -> None:
    with pytest.raises(ConfigError, match="give a store URL or an engine URL, not both"):
        ClientConfig.from_env({}, store="/s", engine=ENGINE)


def test_unknown_settings_are_refused_listing_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        ClientConfig.from_env({}, stroe="/s")
    assert str(info.value) == (
        "unknown client setting(s) stroe; valid settings: store, engine, token, cache_size, format"
    )


def test_a_token_without_an_engine_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"a token is set .* but no engine URL"):
        ClientConfig.from_env({"SQLKV_TOKEN": "t"})


def test_a_malformed_engine_url_is_refused() -> None:
    with pytest.raises(ConfigError, match="sqlkv://host:port"):
        ClientConfig.from_env({}, engine="http://x:1")


def test_format_v1_cannot_go_through_an_engine() -> None:
    with pytest.raises(ConfigError, match="format v1 talks to the store directly"):
        ClientConfig.from_env({"SQLKV_ENGINE": ENGINE}, format="v1")
    with pytest.raises(ConfigError, match="unknown format 'v3'; valid formats: v2, v1"):
        ClientConfig.from_env({}, format="v3")


def test_cache_size_accepts_sizes_and_is_held_in_bytes() -> None:
    assert ClientConfig.from_env({}, cache_size="2MiB").cache_size == 2 * 1024 * 1024
    assert ClientConfig.from_env({}, cache_size="10 pages").cache_bytes == 40960
    with pytest.raises(ConfigError, match="cache_size 'lots' is not a size"):
        ClientConfig.from_env({}, cache_size="lots")


def test_target_hides_the_store_password() -> None:
    cfg = ClientConfig.from_env({}, store="postgresql://u:secret@db:5432/x")
    assert cfg.target == "postgresql://u:***@db:5432/x"


def test_the_engine_built_from_a_store_url_is_closed_with_it(tmp_path: object) -> None:
    cfg = ClientConfig.from_env({}, store="memory://")
    with cfg.open_engine() as opened:
        assert opened.store is not None
        head = opened.engine.open("db").head
        assert opened.engine.head("db") == head
    assert opened.closers == []
