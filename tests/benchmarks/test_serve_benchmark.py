"""`hf-spam benchmark serve`'s parts: its percentiles, its readings of a process, its load
generator against a server in this process."""

from __future__ import annotations

import asyncio
import os
import resource
import threading
import time

import numpy as np
import pytest

from hf_spam.benchmarks import serve
from hf_spam.benchmarks.bulk import sms_texts


def test_percentiles_are_nearest_rank():
    rng = np.random.default_rng(0)
    values = list(rng.random(1001))
    for q in (50, 99, 100):
        assert serve.percentile(values, q) == np.percentile(values, q, method="inverted_cdf")


def test_the_memory_and_cpu_readings_of_a_process():
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # Linux counts KiB
    readings = serve.resident_mb(os.getpid())
    assert readings["VmHWM"] == pytest.approx(peak_kib / 1024, rel=0.05)
    assert 0 < readings["VmRSS"] <= readings["VmHWM"]
    start = serve.cpu_seconds(os.getpid())
    end = time.process_time() + 0.3
    while time.process_time() < end:  # 0.3 s of this thread's work
        pass
    assert serve.cpu_seconds(os.getpid()) - start == pytest.approx(0.3, abs=0.1)


def test_the_sms_texts_are_the_bundled_collections(sms_rows):
    assert sms_texts("sms_spam") == [text for _, text in sms_rows]


def test_send_counts_every_request_and_every_error():
    """Against uvicorn serving a plain ASGI app in a thread: one request in five fails."""
    uvicorn = pytest.importorskip("uvicorn")
    seen = []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = (await receive())["body"]
        seen.append(body)
        status = 500 if len(seen) % 5 == 0 else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"[]"})

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        record = asyncio.run(serve.send(f"http://127.0.0.1:{port}", ["a", "b"], 4, requests=50))
    finally:
        server.should_exit = True
        thread.join(10)
    assert len(seen) == 50
    assert record["errors"] == 10 and record["texts"] == 40
    assert 0 < record["p50_ms"] <= record["p99_ms"]
