"""Prometheus metrics of the model server, served at `/metrics` by `rest`.

Per model: requests by protocol, endpoint and HTTP-equivalent status code; errors by code; an
inference latency histogram; readiness and load time. A fresh registry per server (no globals). When
`server` runs several worker processes it sets PROMETHEUS_MULTIPROC_DIR before they start, and
`render` then aggregates every worker's numbers.
"""

from __future__ import annotations

import os
from typing import Any

import prometheus_client
from prometheus_client import multiprocess

UNKNOWN_MODEL = ""  # label for requests naming a model we do not have (keeps label cardinality bounded)
LATENCY_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
        self.registry = prometheus_client.CollectorRegistry()
        r = self.registry
        self.requests = prometheus_client.Counter(
            "model_server_requests",
            "Requests handled, by model, protocol, endpoint and HTTP-equivalent status code.",
            ["model", "protocol", "endpoint", "code"],
            registry=r,
        )
        self.errors = prometheus_client.Counter(
            "model_server_errors",
            "Requests that failed, by model, protocol, HTTP-equivalent status code and error class.",
            ["model", "protocol", "code", "error"],
            registry=r,
        )
        self.latency = prometheus_client.Histogram(
            "model_server_inference_duration_seconds",
            "Time from a complete inference request to its encoded response.",
            ["model", "protocol"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
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
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self.requests.labels(model, protocol, endpoint, str(code))
        child.inc()
        if seconds is not None:
            lkey = (model, protocol)
            lchild = self._latency_children.get(lkey)
            if lchild is None:
                lchild = self._latency_children[lkey] = self.latency.labels(model, protocol)
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
