"""Mixed OLTP workloads of docs/design.md §7: small and large bank-like databases.

Each transaction is, at random: a balance read (50%), a transfer that updates two
accounts and appends two history rows (35%), a statement of an account's recent history
(10%), or a new account (5%). The large variant has many more accounts, longer notes and
an index on the history, so its working set does not fit in small caches.
"""

from __future__ import annotations

import random

import apsw

from sqlkv.workloads.base import Rows, Scale, name, query, rng, text


def _create_bank(conn: apsw.Connection, accounts: int, salt: int) -> None:
    r = rng(salt)
    with conn:
        conn.execute(
            "CREATE TABLE accounts(id INTEGER PRIMARY KEY, owner TEXT NOT NULL, "
            "balance INTEGER NOT NULL, profile TEXT NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE history(id INTEGER PRIMARY KEY, account INTEGER NOT NULL, "
            "delta INTEGER NOT NULL, note TEXT NOT NULL)"
        )
        conn.execute("CREATE INDEX history_account ON history(account, id)")
        conn.executemany(
            "INSERT INTO accounts VALUES (?, ?, ?, ?)",
            [(i, name(r), 10_000, text(r, 200)) for i in range(1, accounts + 1)],
        )


def create_bank_small(conn: apsw.Connection, scale: Scale) -> None:
    _create_bank(conn, scale.oltp_small[0], 30)


def create_bank_large(conn: apsw.Connection, scale: Scale) -> None:
    _create_bank(conn, scale.oltp_large[0], 31)


def _transaction(conn: apsw.Connection, r: random.Random, note_len: int) -> Rows:
    (accounts,) = conn.execute("SELECT max(id) FROM accounts").fetchone()  # type: ignore[misc]
    roll = r.random()
    a = r.randint(1, accounts)
    if roll < 0.50:
        return query(conn, "SELECT id, balance FROM accounts WHERE id = ?", (a,))
    if roll < 0.85:
        b = r.randint(1, accounts)
        amount = r.randint(1, 500)
        with conn:
            conn.execute("UPDATE accounts SET balance = balance - ? WHERE id = ?", (amount, a))
            conn.execute("UPDATE accounts SET balance = balance + ? WHERE id = ?", (amount, b))
            conn.executemany(
                "INSERT INTO history(account, delta, note) VALUES (?, ?, ?)",
                [(a, -amount, text(r, note_len)), (b, amount, text(r, note_len))],
            )
        return []
    if roll < 0.95:
        return query(
            conn,
            "SELECT id, delta FROM history WHERE account = ? ORDER BY id DESC LIMIT 10",
            (a,),
        )
    conn.execute(
        "INSERT INTO accounts(owner, balance, profile) VALUES (?, 0, ?)",
        (name(r), text(r, 200)),
    )
    return []


def _mixed(conn: apsw.Connection, transactions: int, note_len: int, salt: int) -> Rows:
    r = rng(salt)
    out: Rows = []
    for _ in range(transactions):
        out.extend(_transaction(conn, r, note_len))
    out.extend(
        query(conn, "SELECT count(*), sum(balance) FROM accounts")
        + query(conn, "SELECT count(*), sum(delta), sum(length(note)) FROM history")
    )
    return out


def oltp_small(conn: apsw.Connection, scale: Scale) -> Rows:
    """``oltp_small[1]`` mixed transactions over ``oltp_small[0]`` accounts."""
    return _mixed(conn, scale.oltp_small[1], 40, 32)


def oltp_large(conn: apsw.Connection, scale: Scale) -> Rows:
    """``oltp_large[1]`` mixed transactions over ``oltp_large[0]`` accounts, longer notes."""
    return _mixed(conn, scale.oltp_large[1], 400, 33)
