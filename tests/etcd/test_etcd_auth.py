"""etcd authentication: a user and password in the URL, a token renewed by the driver, and
clear errors for a wrong password or a prefix the user may not touch. On a private cluster
(auth is enabled cluster-wide)."""

from __future__ import annotations

import subprocess

import pytest
from cluster import Cluster

from sqlkv.errors import ConfigError
from sqlkv.store import open_store

# One pytest-xdist worker runs the module: its private cluster (a module fixture) starts once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("etcd-auth")]


def etcdctl(cluster: Cluster, *args: str) -> None:
    endpoints = ",".join(cluster.members.values())
    subprocess.run(
        ["etcdctl", f"--endpoints={endpoints}", *args],
        check=True,
        capture_output=True,
        env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin:/usr/local/bin"},
    )


@pytest.fixture(scope="module")
def auth_cluster(cluster: Cluster) -> Cluster:
    etcdctl(cluster, "user", "add", "root:root-pw")
    etcdctl(cluster, "user", "add", "app:app pw/1")
    etcdctl(cluster, "role", "add", "app")
    etcdctl(cluster, "role", "grant-permission", "app", "readwrite", "--prefix=true", "tenant-a/")
    etcdctl(cluster, "user", "grant-role", "app", "app")
    etcdctl(cluster, "auth", "enable")
    return cluster


def url_for(cluster: Cluster, userinfo: str, prefix: str) -> str:
    hosts = cluster.url.split("//", 1)[1].split("/", 1)[0]
    return f"etcd://{userinfo}@{hosts}/{prefix}?timeout=5"


def test_a_user_with_permission_on_the_prefix_reads_and_writes(auth_cluster: Cluster) -> None:
    store = open_store(url_for(auth_cluster, "app:app%20pw%2F1", "tenant-a"))
    try:
        store.transact(lambda tr: tr.set(b"k", b"v"))
        assert store.transact(lambda tr: tr.get_range(b"", b"\xff")) == [(b"k", b"v")]
        assert "pw" not in store.url
        # the driver renews a token etcd no longer accepts
        store.client._token = "not-a-token"  # type: ignore[attr-defined]
        assert store.transact(lambda tr: tr.get(b"k")) == b"v"
    finally:
        store.drop()  # type: ignore[attr-defined]
        store.close()


def test_a_wrong_password_is_a_configuration_error(auth_cluster: Cluster) -> None:
    store = open_store(url_for(auth_cluster, "app:wrong", "tenant-a"))
    with pytest.raises(ConfigError, match="user and password"):
        store.transact(lambda tr: tr.get(b"k"))
    store.close()


def test_a_prefix_outside_the_users_permission_is_refused(auth_cluster: Cluster) -> None:
    store = open_store(url_for(auth_cluster, "app:app%20pw%2F1", "tenant-b"))
    with pytest.raises(ConfigError, match="permission"):
        store.transact(lambda tr: tr.set(b"k", b"v"))
    store.close()
