"""Helpers of ``bench_core.py``: the anchors (plain SQLite files, psycopg), timing, the goal
rows, and the markdown table and PNG plot written to ``bench/results/``.

Plain SQLite anchors: ``wal`` is journal_mode=WAL + synchronous=NORMAL, the durability class
of the embedded store (survives a killed process, not a power loss); ``delete`` is
journal_mode=DELETE + synchronous=FULL (fsyncs every commit, survives power loss).
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import apsw

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    """One goal: what was measured against what, and whether the goal is met."""

    goal: str
    measured: float
    unit: str
    anchor: float | None  # same unit; None when the goal is absolute
    anchor_name: str
    target: str  # human text, e.g. "<= 3x"
    limit: float  # ratio (or absolute value) the goal allows
    kind: str = "ratio<="  # ratio<=, ratio>=, abs<=, abs>=
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.anchor is None or self.anchor == 0:
            return None
        return self.measured / self.anchor

    @property
    def met(self) -> bool:
        value = self.ratio if self.kind.startswith("ratio") else self.measured
        if value is None:
            return False
        return value <= self.limit if self.kind.endswith("<=") else value >= self.limit


def plain(path: Path, wal: bool) -> apsw.Connection:
    """A plain SQLite file: WAL+NORMAL (``wal``) or DELETE+FULL."""
    conn = apsw.Connection(str(path))
    # one statement per execute: apsw runs a statement list lazily, row by row
    journal, sync = ("WAL", "NORMAL") if wal else ("DELETE", "FULL")
    conn.execute(f"PRAGMA journal_mode={journal}").fetchall()
    conn.execute(f"PRAGMA synchronous={sync}").fetchall()
    return conn


def timed(fn: Callable[[], object]) -> float:
    """Seconds ``fn()`` took."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def environment(args: object) -> str:
    lines = [
        f"python {platform.python_version()} on {platform.platform()}",
        f"cpus {os.cpu_count()}, load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}",
        f"SQLite {apsw.sqlite_lib_version()} (apsw {apsw.apsw_version()})",
        f"sqlkv {metadata.version('sqlkv') if _installed('sqlkv') else '(source tree)'}",
        f"arguments: {' '.join(sys.argv[1:]) or '(none)'}  {args}",
    ]
    return "\n".join(lines)


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:.2f} ms" if value < 100 else f"{value:,.0f} ms"
    if unit in ("commits/s",):
        return f"{value:,.0f}/s"
    return f"{value:,.0f} {unit}" if value >= 10 else f"{value:.3g} {unit}"


def table(rows: list[Row]) -> str:
    out = [
        "| goal | sqlkv | anchor | ratio | target | met? |",
        "|---|---:|---:|---:|---|:-:|",
    ]
    for r in rows:
        anchor = f"{fmt(r.anchor, r.unit)} ({r.anchor_name})" if r.anchor is not None else "-"
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
        note = f" {r.note}" if r.note else ""
        out.append(
            f"| {r.goal}{note} | {fmt(r.measured, r.unit)} | {anchor} | {ratio} | {r.target} "
            f"| {'yes' if r.met else '**no**'} |"
        )
    return "\n".join(out)


def plot(curves: dict[str, dict[str, list[tuple[float, float]]]], path: Path) -> bool:
    """One panel per operation: latency (ms) against store round-trip time (ms), one line
    per system. Returns False when matplotlib (the ``bench`` extra) is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, len(curves), figsize=(5.5 * len(curves), 4.2), squeeze=False)
    for ax, (operation, lines) in zip(axes[0], curves.items(), strict=True):
        for name, points in lines.items():
            xs, ys = zip(*sorted(points), strict=True)
            style = "--" if "model" in name else "-"
            ax.plot(xs, ys, style, marker="o", label=name)
        ax.set_title(operation)
        ax.set_xlabel("store round-trip time (ms)")
        ax.set_ylabel("latency per operation (ms)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
