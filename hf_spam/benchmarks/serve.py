"""Serving under load: `hf-spam serve` on loopback against `pipeline()` one text at a time.

The tiny classifier of the bulk table (2 blocks of width 32, GPT-2's vocabulary, random weights)
classifies SMS texts, one text per request, as a spam filter is called online:

* `pipeline`: the texts one by one through `pipeline("text-classification")` in one process, for
  `--seconds`: what a program calling the model itself gets;
* `clients_1`, `clients_8`, `clients_64`: `hf-spam serve` in its own process and that many
  concurrent httpx clients (asyncio, one connection each, the next request as soon as the last
  is answered) posting `{"inputs": text}` to `/predict` for `--seconds`;
* `memory` (with `--requests N`): N requests from 64 clients, the server's resident memory
  after a warm-up and at the end.

Each row runs in its own process (`runner`). Latency is per request (p50, p99) as the client saw
it; the peak memory of a serving row is the server's (its VmHWM), of `pipeline` its process's.
The clients share the machine with the server, so on few cores they cost it throughput: `CPU
ms/text` is what the model's process (the server, or the pipeline's) spent per text, `client CPU
ms/text` what the clients did, the rate the server would reach with cores of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .bulk import save_tiny_classifier, sms_texts
from .runner import Row, load_average, machine_header, progress, registry, run_row
from .workload import quick_flag

CLIENTS = (1, 8, 64)
SECONDS, QUICK_SECONDS = 10.0, 3.0
#: Requests sent before the `memory` row's first reading: the allocator and the caches settle.
WARM_UP_REQUESTS = 2_000
MEMORY_CLIENTS = 64


@dataclass
class ServeBenchmarkArguments:
    """What the serving benchmark sends, for how long."""

    _argument_group_name = "serve benchmark"

    dataset: str = field(
        default=os.environ.get("HF_SPAM_SMS_FILE", "sms_spam"),
        metadata={"help": "SMSSpamCollection file whose texts are sent, or 'sms_spam' for the "
                          "copy bundled with the package."},
    )  # fmt: skip
    quick: bool = quick_flag(f"{QUICK_SECONDS:g} s per row instead of {SECONDS:g}")
    seconds: float | None = field(
        default=None, metadata={"help": f"Seconds each row sends for (default {SECONDS:g})."}
    )
    requests: int = field(
        default=0,
        metadata={"help": "Also the memory row: this many requests from 64 clients, the "
                          "server's resident memory after a warm-up and at the end (0: skip)."},
    )  # fmt: skip
    threads: int = field(
        default=1,
        metadata={"help": "torch's threads, for pipeline() and the server alike (the clients "
                          "need cores too)."},
    )  # fmt: skip
    max_batch_size: int = field(default=64, metadata={"help": "hf-spam serve --max_batch_size"})
    max_wait_ms: float = field(default=2.0, metadata={"help": "hf-spam serve --max_wait_ms"})
    output_json: str | None = field(default=None, metadata={"help": "Also write rows as JSON."})

    def __post_init__(self) -> None:
        self.seconds = self.seconds or (QUICK_SECONDS if self.quick else SECONDS)
        if self.seconds <= 0:
            raise UsageError(f"--seconds must be positive, got {self.seconds}")
        if self.threads < 1:
            raise UsageError(f"--threads must be positive, got {self.threads}")
        if self.requests < 0:
            raise UsageError(f"--requests must be 0 or more, got {self.requests}")
        sms_texts(self.dataset)  # a missing file fails here, before any row


def percentile(values: list[float], q: float) -> float:
    """The `q`-th percentile (0-100) of `values`, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(q / 100 * len(ordered)))) - 1]


def latency_record(count: int, seconds: float, latencies: list[float], errors: int) -> dict:
    ms = [1000 * s for s in latencies] or [float("nan")]
    return {"texts": count, "seconds": seconds, "errors": errors,
            "p50_ms": statistics.median(ms), "p99_ms": percentile(ms, 99)}  # fmt: skip


# ------------------------------------------------------------------------------------------------
# The rows, each in its own process
# ------------------------------------------------------------------------------------------------


def pipeline_one_by_one(args: ServeBenchmarkArguments, model: str) -> dict[str, Any]:
    """`pipeline()` called with one text at a time for `args.seconds`."""
    import torch
    from transformers import pipeline

    torch.set_num_threads(args.threads)
    classify = pipeline("text-classification", model=model, device="cpu")
    texts = sms_texts(args.dataset)
    for text in texts[:50]:  # warm-up
        classify(text, top_k=None, truncation=True)
    latencies = []
    start, cpu = time.perf_counter(), time.process_time()
    for text in itertools.cycle(texts):
        began = time.perf_counter()
        classify(text, top_k=None, truncation=True)
        latencies.append(time.perf_counter() - began)
        if began - start >= args.seconds:
            break
    record = latency_record(len(latencies), time.perf_counter() - start, latencies, 0)
    return {**record, "model_cpu_s": time.process_time() - cpu}


def start_server(model: str, args: ServeBenchmarkArguments) -> tuple[subprocess.Popen, str]:
    """`hf-spam serve` on a free loopback port; its URL once it says it is serving."""
    command = [sys.executable, "-m", "hf_spam.cli", "serve", "--model", model, "--port", "0",
               "--max_batch_size", str(args.max_batch_size), "--max_wait_ms",
               str(args.max_wait_ms), "--max_queue", "100000", "--log_level", "warning",
               "--device", "cpu", "--num_threads", str(args.threads)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    for line in process.stdout:
        if line.startswith("Serving "):
            return process, line.split(" at ")[1].split()[0]
    raise UsageError(f"hf-spam serve exited with status {process.wait()} before serving")


def resident_mb(pid: int) -> dict[str, float]:
    """The process's resident memory now (VmRSS) and at its peak (VmHWM), in MB (Linux)."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, flags=re.M))
    return {key: int(value) / 1024 for key, value in found.items()}


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds the process has used so far (Linux's /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client_cpu_seconds() -> float:
    return sum(os.times()[:2])


def stop_server(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    if process.wait(timeout=60):
        raise UsageError(f"hf-spam serve exited with status {process.returncode} on SIGTERM")


async def send(url: str, texts: list[str], clients: int, *, seconds=None, requests=None) -> dict:
    """`clients` httpx clients posting one text per request to /predict, until `seconds` have
    passed or `requests` have been sent; the count, latencies and errors. Each client is an
    `AsyncClient` of its own with one connection, as separate programs calling the server are
    (one pool of many connections costs httpx more than the server spends per request), made
    before the clock starts."""
    import httpx

    latencies: list[float] = []
    errors = 0
    numbers = itertools.count()
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    async def one_client(client: httpx.AsyncClient, start: float) -> None:
        nonlocal errors
        while True:
            number = next(numbers)
            if requests is not None and number >= requests:
                return
            if seconds is not None and time.perf_counter() - start >= seconds:
                return
            began = time.perf_counter()
            try:
                answer = await client.post("/predict", json={"inputs": texts[number % len(texts)]})
                ok = answer.status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                latencies.append(time.perf_counter() - began)
            else:
                errors += 1

    async with contextlib.AsyncExitStack() as stack:
        pool = [await stack.enter_async_context(httpx.AsyncClient(base_url=url, limits=limits,
                                                                  timeout=60))
                for _ in range(clients)]  # fmt: skip
        start = time.perf_counter()
        await asyncio.gather(*(one_client(client, start) for client in pool))
        elapsed = time.perf_counter() - start
    return latency_record(len(latencies), elapsed, latencies, errors)


def serve_load(args: ServeBenchmarkArguments, model: str, clients: int) -> dict[str, Any]:
    """`clients` concurrent clients against a fresh server for `args.seconds`."""
    texts = sms_texts(args.dataset)
    process, url = start_server(model, args)
    try:
        asyncio.run(send(url, texts, clients, requests=200))  # warm-up
        server, client = cpu_seconds(process.pid), client_cpu_seconds()
        record = asyncio.run(send(url, texts, clients, seconds=args.seconds))
        record["model_cpu_s"] = cpu_seconds(process.pid) - server
        record["client_cpu_s"] = client_cpu_seconds() - client
        record["server_peak_mb"] = resident_mb(process.pid)["VmHWM"]
    finally:
        stop_server(process)
    return record


def serve_memory(args: ServeBenchmarkArguments, model: str) -> dict[str, Any]:
    """`args.requests` requests from 64 clients; the server's memory before and after them."""
    texts = sms_texts(args.dataset)
    process, url = start_server(model, args)
    try:
        asyncio.run(send(url, texts, MEMORY_CLIENTS, requests=WARM_UP_REQUESTS))
        before = resident_mb(process.pid)
        server, client = cpu_seconds(process.pid), client_cpu_seconds()
        record = asyncio.run(send(url, texts, MEMORY_CLIENTS, requests=args.requests))
        record["model_cpu_s"] = cpu_seconds(process.pid) - server
        record["client_cpu_s"] = client_cpu_seconds() - client
        after = resident_mb(process.pid)
    finally:
        stop_server(process)
    return {**record, "rss_start_mb": before["VmRSS"], "rss_end_mb": after["VmRSS"],
            "server_peak_mb": after["VmHWM"]}  # fmt: skip


ARGUMENTS = ServeBenchmarkArguments
ROWS = registry(
    Row("pipeline", "pipeline(), one text at a time, one process", pipeline_one_by_one),
    *(Row(f"clients_{n}", f"hf-spam serve, {n} concurrent client{'s' * (n > 1)}", serve_load,
          {"clients": n}) for n in CLIENTS),
    Row("memory", f"hf-spam serve, {MEMORY_CLIENTS} clients, --requests", serve_memory),
)  # fmt: skip


# ------------------------------------------------------------------------------------------------
# The table
# ------------------------------------------------------------------------------------------------


def table_row(row: Row, record: dict, peak_mb: float, baseline: float | None) -> dict[str, str]:
    rate = record["texts"] / record["seconds"]
    memory = record.get("server_peak_mb", peak_mb)
    line = {"run": row.what, "requests": f"{record['texts'] + record['errors']:,}",
            "texts/s": f"{rate:,.0f}", "x pipeline": f"{rate / baseline:.1f}" if baseline else "1.0",
            "p50 ms": f"{record['p50_ms']:.1f}", "p99 ms": f"{record['p99_ms']:.1f}",
            "errors": str(record["errors"]),
            "CPU ms/text": f"{1000 * record['model_cpu_s'] / max(record['texts'], 1):.2f}",
            "client CPU ms/text": _per_text(record.get("client_cpu_s"), record["texts"]),
            "peak RSS MB": f"{memory:.0f}", "RSS start/end MB": ""}  # fmt: skip
    if "rss_start_mb" in record:
        line["RSS start/end MB"] = f"{record['rss_start_mb']:.0f} / {record['rss_end_mb']:.0f}"
    return line


def _per_text(seconds: float | None, texts: int) -> str:
    return "" if seconds is None else f"{1000 * seconds / max(texts, 1):.2f}"


def run_serve_benchmark(args: ServeBenchmarkArguments) -> list[dict[str, str]]:
    names = ["pipeline", *(f"clients_{n}" for n in CLIENTS)] + (["memory"] if args.requests else [])
    lines, baseline = [], None
    with tempfile.TemporaryDirectory(prefix="hf_spam-serve-bench-") as tmp:
        model = str(save_tiny_classifier(Path(tmp) / "tiny"))
        for name in names:
            row = ROWS[name]
            progress(row.what)
            result = run_row(__name__, row, args, {"model": model})
            record = result.records[0]
            line = table_row(row, record, result.peak_memory_mb, baseline)
            baseline = baseline or record["texts"] / record["seconds"]
            lines.append(line)
    return lines


def main(args: ServeBenchmarkArguments) -> None:
    from ..files import write_json
    from ..reporting import format_table

    table = run_serve_benchmark(args)
    details = [f"{args.seconds:g} s per row", f"--threads {args.threads}", f"--max_batch_size {args.max_batch_size}",
               f"--max_wait_ms {args.max_wait_ms:g}"]  # fmt: skip
    print(machine_header(*details, cpu=[f"load average {load_average()}"]))
    print(format_table(table))
    if args.output_json:
        write_json(args.output_json, {"rows": table})


__all__ = ["ARGUMENTS", "ROWS", "ServeBenchmarkArguments", "main", "run_serve_benchmark"]
