"""Prometheus metrics of the model server, served at `/metrics` by `rest`.

Per model: requests by protocol, endpoint and HTTP-equivalent status code; errors by code; an
inference latency histogram; readiness and load time. A fresh registry per server (no globals). When
`server` runs several worker processes it sets PROMETHEUS_MULTIPROC_DIR before they start, and
`render` then aggregates every worker's numbers.

Requests and latency are counted on every request, so in one process they are plain dict and list
updates (a fraction of a microsecond) that a collector turns into the same `model_server_requests`
and `model_server_inference_duration_seconds` families at scrape time; prometheus_client's own
counter and histogram take a lock and walk the buckets in Python on every call (about 2 µs a
request). REST updates them from the event loop's thread, gRPC from its own threads under its own
lock (`grpc_server`); every key includes the protocol, so the two never update the same entry, and
a single dict operation is atomic under the GIL.
With several processes the numbers must reach the other workers' scrapes at once, so they go
through prometheus_client's shared-file values instead.
"""

from __future__ import annotations

import bisect
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import prometheus_client
from prometheus_client import multiprocess
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

UNKNOWN_MODEL = ""  # label for requests naming a model we do not have (keeps label cardinality bounded)
LATENCY_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)

REQUESTS = "model_server_requests"
REQUESTS_HELP = "Requests handled, by model, protocol, endpoint and HTTP-equivalent status code."
REQUEST_LABELS = ("model", "protocol", "endpoint", "code")
LATENCY = "model_server_inference_duration_seconds"
LATENCY_HELP = "Time from a complete inference request to its encoded response."
LATENCY_LABELS = ("model", "protocol")
_LE = [floatToGoString(b) for b in LATENCY_BUCKETS] + ["+Inf"]  # type: ignore[no-untyped-call]


class _Counts:
    """In-process request counts and latency histograms, exposed as prometheus_client would expose them."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str, int], int] = {}
        self.requests_created: dict[tuple[str, str, str, int], float] = {}
        # per (model, protocol): one count per bucket (not cumulative; the last is +Inf), then the sum
        self.latency: dict[tuple[str, str], list[float]] = {}
        self.latency_created: dict[tuple[str, str], float] = {}

    def collect(self) -> Iterator[Metric]:
        yield self.requests_family()
        yield self.latency_family()

    def requests_family(self) -> Metric:
        requests = CounterMetricFamily(REQUESTS, REQUESTS_HELP, labels=REQUEST_LABELS)
        for key, count in list(self.requests.items()):
            model, protocol, endpoint, code = key
            labels = [model, protocol, endpoint, str(code)]
            requests.add_metric(labels, float(count), created=self.requests_created[key])
        return requests

    def latency_family(self) -> Metric:
        latency = HistogramMetricFamily(LATENCY, LATENCY_HELP, labels=LATENCY_LABELS)
        for lkey, counts in list(self.latency.items()):
            cumulative, buckets = 0.0, []
            for le, n in zip(_LE, counts, strict=False):  # counts ends with the sum
                cumulative += n
                buckets.append((le, cumulative))
            latency.add_metric(list(lkey), buckets, counts[-1])
            labels = dict(zip(LATENCY_LABELS, lkey, strict=True))
            latency.samples.append(Sample(f"{LATENCY}_created", labels, self.latency_created[lkey]))
        return latency


class _One(Collector):
    """One family of `_Counts`, registered in its place so /metrics keeps prometheus_client's order."""

    def __init__(self, family: Callable[[], Metric]) -> None:
        self.family = family

    def collect(self) -> Iterator[Metric]:
        yield self.family()


class Metrics:
    def __init__(self) -> None:
        self.multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
        self.registry = prometheus_client.CollectorRegistry()
        r = self.registry
        # In one process: `_Counts`, read at scrape time; with several: prometheus_client's shared values.
        counts = self._counts = None if self.multiprocess_dir else _Counts()
        if counts is None:
            self.requests = prometheus_client.Counter(REQUESTS, REQUESTS_HELP, REQUEST_LABELS, registry=r)
        else:
            r.register(_One(counts.requests_family))
        self.errors = prometheus_client.Counter(
            "model_server_errors",
            "Requests that failed, by model, protocol, HTTP-equivalent status code and error class.",
            ["model", "protocol", "code", "error"],
            registry=r,
        )
        if counts is None:
            self.latency = prometheus_client.Histogram(
                LATENCY, LATENCY_HELP, LATENCY_LABELS, buckets=LATENCY_BUCKETS, registry=r
            )
        else:
            r.register(_One(counts.latency_family))
        self.ready = prometheus_client.Gauge(
            "model_server_model_ready",
            "1 when the model is loaded and serving, else 0.",
            ["model"],
            multiprocess_mode="livemin",
            registry=r,
        )
        self.load_seconds = prometheus_client.Gauge(
            "model_server_model_load_seconds",
            "How long the last load of the model took.",
            ["model"],
            multiprocess_mode="livemax",
            registry=r,
        )
        self._request_children: dict[tuple[str, str, str, int], Any] = {}
        self._latency_children: dict[tuple[str, str], Any] = {}

    def request(self, model: str, protocol: str, endpoint: str, code: int, seconds: float | None = None) -> None:
        key = (model, protocol, endpoint, code)
        counts = self._counts
        if counts is None:
            self._shared_request(key, seconds)
            return
        n = counts.requests.get(key)
        if n is None:
            counts.requests_created[key] = time.time()
            n = 0
        counts.requests[key] = n + 1
        if seconds is not None:
            lkey = (model, protocol)
            hist = counts.latency.get(lkey)
            if hist is None:
                counts.latency_created[lkey] = time.time()
                hist = counts.latency[lkey] = [0.0] * (len(LATENCY_BUCKETS) + 2)
            hist[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
            hist[-1] += seconds

    def _shared_request(self, key: tuple[str, str, str, int], seconds: float | None) -> None:
        child = self._request_children.get(key)
        if child is None:
            model, protocol, endpoint, code = key
            child = self._request_children[key] = self.requests.labels(model, protocol, endpoint, str(code))
        child.inc()
        if seconds is not None:
            lkey = key[:2]
            lchild = self._latency_children.get(lkey)
            if lchild is None:
                lchild = self._latency_children[lkey] = self.latency.labels(*lkey)
            lchild.observe(seconds)

    def error(self, model: str, protocol: str, code: int, error: str) -> None:
        self.errors.labels(model, protocol, str(code), error).inc()

    def model_state(self, model: str, ready: bool, load_seconds: float | None = None) -> None:
        self.ready.labels(model).set(1 if ready else 0)
        if load_seconds is not None:
            self.load_seconds.labels(model).set(load_seconds)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        if self.multiprocess_dir:
            registry = prometheus_client.CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
            return prometheus_client.generate_latest(registry), prometheus_client.CONTENT_TYPE_LATEST
        return prometheus_client.generate_latest(self.registry), prometheus_client.CONTENT_TYPE_LATEST
