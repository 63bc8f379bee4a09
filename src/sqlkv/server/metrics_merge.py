"""One ``/metrics`` for a supervisor and its workers (``supervisor.py``): the workers'
Prometheus expositions merged into one, plus the supervisor's own series.

Merging: samples with the same name and labels are added up (counters, histogram
buckets, sums and counts, and gauges such as ``sqlkv_server_connections`` or
``process_resident_memory_bytes``, whose total over the workers is what an operator
wants). Exceptions, where a sum means nothing: ``process_start_time_seconds`` (the
earliest), ``*_info`` series and ``process_max_fds`` (the largest). A worker's own series
stay available at ``/metrics?worker=I``.

Supervisor series: ``sqlkv_serve_workers`` (configured), ``sqlkv_serve_workers_up``
(running now), ``sqlkv_serve_worker_restarts_total`` (workers started again after one
died) and ``sqlkv_serve_scrape_failures`` (workers that did not answer this scrape).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

EARLIEST = frozenset({"process_start_time_seconds"})
LARGEST = frozenset({"process_max_fds"})

Key = tuple[str, tuple[tuple[str, str], ...]]


def merge_expositions(texts: Iterable[str]) -> str:
    """The sum (see the module docstring) of several Prometheus text expositions."""
    families: dict[str, tuple[str, str, dict[Key, float]]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            _, _, samples = families.setdefault(
                family.name, (family.type, family.documentation, {})
            )
            for s in family.samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                old = samples.get(key)
                if old is None:
                    samples[key] = s.value
                elif s.name in EARLIEST:
                    samples[key] = min(old, s.value)
                elif s.name in LARGEST or s.name.endswith("_info"):
                    samples[key] = max(old, s.value)
                else:
                    samples[key] = old + s.value
    out: list[str] = []
    for name, (kind, doc, samples) in families.items():
        out.append(f"# HELP {name} {_escape_help(doc)}\n# TYPE {name} {_type(kind)}\n")
        for (sample, labels), value in samples.items():
            shown = floatToGoString(value)  # type: ignore[no-untyped-call]
            out.append(f"{sample}{_labels(labels)} {shown}\n")
    return "".join(out)


def supervisor_series(workers: int, up: int, restarts: int, scrape_failures: int) -> str:
    rows = [
        ("sqlkv_serve_workers", "gauge", "Worker processes configured", workers),
        ("sqlkv_serve_workers_up", "gauge", "Worker processes running", up),
        (
            "sqlkv_serve_worker_restarts",
            "counter",
            "Workers started again after one died",
            restarts,
        ),
        (
            "sqlkv_serve_scrape_failures",
            "gauge",
            "Workers whose metrics this scrape could not read",
            scrape_failures,
        ),
    ]
    out = []
    for name, kind, doc, value in rows:
        sample = f"{name}_total" if kind == "counter" else name
        out.append(f"# HELP {name} {doc}\n# TYPE {name} {kind}\n{sample} {value}\n")
    return "".join(out)


def _type(kind: str) -> str:
    # the text format knows no "info" or "stateset": prometheus_client writes them as gauges
    return kind if kind in ("counter", "gauge", "histogram", "summary") else "gauge"


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape_value(v)}"' for k, v in labels) + "}"


def _escape_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
