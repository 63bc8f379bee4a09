"""``etcds://``: TLS to a member with a CA file and a client certificate (a one-member
etcd started here with certificates made by the ``openssl`` tool)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sqlkv.errors import StoreUnavailable
from sqlkv.store import open_store

pytestmark = pytest.mark.slow


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=cwd)


def make_certs(d: Path) -> None:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=sqlkv-test-ca", "-keyout", "ca.key", "-out", "ca.pem", cwd=d)  # fmt: skip
    for name, ext in (
        # etcd's JSON gateway dials the member's own gRPC port with the server certificate,
        # so with --client-cert-auth that certificate must allow client use too.
        ("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        (d / f"{name}.ext").write_text(ext + "\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
                "-out", f"{name}.pem", cwd=d)  # fmt: skip


@pytest.fixture
def tls_member(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    if shutil.which("etcd") is None or shutil.which("openssl") is None:
        pytest.fail("etcd and openssl are needed (scripts/test installs etcd)")
    make_certs(tmp_path)
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        port, peer = a.getsockname()[1], b.getsockname()[1]
    proc = subprocess.Popen(
        ["etcd", "--name", "tls", "--data-dir", str(tmp_path / "data"),
         "--listen-client-urls", f"https://127.0.0.1:{port}",
         "--advertise-client-urls", f"https://127.0.0.1:{port}",
         "--listen-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-cluster", f"tls=http://127.0.0.1:{peer}",
         "--cert-file", str(tmp_path / "server.pem"), "--key-file", str(tmp_path / "server.key"),
         "--client-cert-auth", "--trusted-ca-file", str(tmp_path / "ca.pem"),
         "--logger", "zap", "--log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield port, tmp_path
    finally:
        proc.kill()
        proc.wait()


def test_etcds_with_a_ca_and_a_client_certificate(tls_member: tuple[int, Path]) -> None:
    port, d = tls_member
    url = (
        f"etcds://127.0.0.1:{port}/tls?ca={d / 'ca.pem'}&cert={d / 'client.pem'}"
        f"&key={d / 'client.key'}&timeout=5"
    )
    store = open_store(url)
    try:
        deadline = time.monotonic() + 20
        while True:  # the member may still be electing itself
            try:
                store.transact(lambda tr: tr.set(b"k", b"over tls"))
                break
            except StoreUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert store.transact(lambda tr: tr.get(b"k")) == b"over tls"
    finally:
        store.close()
    # without the client certificate the member refuses the handshake
    plain = open_store(f"etcds://127.0.0.1:{port}/tls?ca={d / 'ca.pem'}&timeout=5")
    with pytest.raises(StoreUnavailable, match="could serve"):
        plain.begin().get(b"k")
    plain.close()
