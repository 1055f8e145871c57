"""What `GET /metrics` reports, in Prometheus' text format (prometheus_client's own machinery).

Each app has a registry of its own, so two servers in one process (the tests) count apart:

* `hf_spam_requests_total{route, status}`: answered requests, by route and HTTP status;
* `hf_spam_texts_total`: texts classified;
* `hf_spam_batch_size`: texts per batch the dynamic batcher ran (a histogram);
* `hf_spam_request_duration_seconds{route}`: time from request to answer (a histogram);
* `hf_spam_errors_total{error_type}`: error answers, by TEI's error kinds (validation, overloaded...);
* `hf_spam_queue_texts`: texts waiting for a batch now.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "ServerMetrics"]

#: Request latency buckets in seconds: a forward pass of a small model is milliseconds, a full
#: queue behind a large one seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def batch_size_buckets(max_batch_size: int) -> tuple[float, ...]:
    """Powers of two up to the largest batch the batcher can run (a request of more texts than
    `max_batch_size` runs as one batch of its own, hence the open last bucket)."""
    buckets, size = [], 1
    while size < max_batch_size:
        buckets.append(float(size))
        size *= 2
    return (*buckets, float(max_batch_size))


class ServerMetrics:
    """The server's counters and histograms, in a registry of their own."""

    def __init__(self, max_batch_size: int) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hf_spam_requests", "Answered requests.", ("route", "status"), registry=self.registry
        )
        self.texts = Counter("hf_spam_texts", "Texts classified.", registry=self.registry)
        self.batch_size = Histogram(
            "hf_spam_batch_size",
            "Texts per batch run by the dynamic batcher.",
            buckets=batch_size_buckets(max_batch_size),
            registry=self.registry,
        )
        self.latency = Histogram(
            "hf_spam_request_duration_seconds",
            "Seconds from request to answer.",
            ("route",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "hf_spam_errors", "Error answers, by kind.", ("error_type",), registry=self.registry
        )
        self.queued = Gauge(
            "hf_spam_queue_texts", "Texts waiting for a batch.", registry=self.registry
        )

    def answered(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route=route, status=str(status)).inc()
        self.latency.labels(route=route).observe(seconds)

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)
