"""Bulk prediction benchmark (`hf-spam benchmark --bulk`): `hf-spam predict` end to end, the bulk
path against `pipeline()`, on the tiny classifier and the 124M model.

(a) the tiny classifier (2 blocks of width 32, GPT-2's vocabulary) over 100k SMS-length texts,
end to end in a fresh process (imports and model load included), bulk path vs `--use_pipeline`;
(b) peak resident memory of the bulk path at 10k and 1M lines; (c) the 124M model, bulk vs the
batched pipeline over the SMS test texts (rows of the SMS benchmark, each in its own process), and
the fastest any fp32 path could be here: the forward's multiply-adds at this CPU's measured matrix
product rate.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from ..hardware import cpu_name
from .speed import BenchmarkArguments, Row, benchmark_data, run_all

BULK_TEXTS = 100_000
BULK_MEMORY_SIZES = (10_000, 1_000_000)
#: The tiny classifier of the bulk rows: GPT-2's vocabulary and context, 2 blocks of width 32.
BULK_TINY_CONFIG = dict(emb_dim=32, n_layers=2, n_heads=4)


def _sms_texts(dataset: str) -> list[str]:
    """The SMS texts of the collection file (label TAB text per line)."""
    with open(dataset, encoding="utf-8") as handle:
        return [line.split("\t", 1)[1].rstrip("\n") for line in handle if "\t" in line]


def _write_sample(texts: list[str], n: int, path: Path, seed: int = 0) -> Path:
    """`n` texts drawn (with repeats) from `texts`, one per line, written as they are drawn."""
    import random

    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as handle:
        for _ in range(n):
            handle.write(rng.choice(texts).replace("\n", " ") + "\n")
    return path


def _save_tiny_classifier(folder: Path) -> Path:
    from ..data import get_tokenizer
    from ..model.configuration import GPTConfig
    from ..model.modeling import GPTForSequenceClassification

    torch.manual_seed(123)
    config = GPTConfig(**BULK_TINY_CONFIG, num_labels=2, id2label={0: "ham", 1: "spam"})
    GPTForSequenceClassification(config).save_pretrained(folder)
    get_tokenizer().save_pretrained(folder)
    return folder


def _timed_predict(model: Path, texts: Path, output: Path, *extra: str) -> tuple[float, float]:
    """Wall-clock seconds and peak RSS (MB) of one `hf-spam predict` process, start-up included
    (`os.wait4` gives this child's own maximum resident size)."""
    cmd = [sys.executable, "-m", "hf_spam.cli", "predict", "--model", str(model)]
    cmd += ["--input", str(texts), "--output", str(output), "--overwrite", "--progress", "false"]
    start = time.perf_counter()
    process = subprocess.Popen([*cmd, *extra], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, cmd)
    return seconds, usage.ru_maxrss / 1024


def run_bulk_benchmark(args: BenchmarkArguments, repeats: int = 2) -> list[dict[str, Any]]:
    """Table rows: (a) the tiny classifier over `BULK_TEXTS` SMS texts, `hf-spam predict` end
    to end (a fresh process: imports and model load included), bulk path vs `--use_pipeline`;
    (b) peak resident memory of the bulk path at 10k and 1M lines; (c) the 124M model, bulk vs
    the batched pipeline over the SMS test texts (the `pipe_hf_spam_batched` and `bulk_hf_spam`
    rows, each in its own process). Every measurement runs `repeats` times."""
    texts = _sms_texts(args.dataset)
    n_texts = 5_000 if args.quick else BULK_TEXTS
    sizes = (1_000, 20_000) if args.quick else BULK_MEMORY_SIZES
    rows = []
    with tempfile.TemporaryDirectory(prefix="hf_spam-bulk-bench-") as tmp:
        tmp = Path(tmp)
        model = _save_tiny_classifier(tmp / "tiny")
        sample = _write_sample(texts, n_texts, tmp / f"{n_texts}.txt")
        for label, extra in (("bulk path", ()), ("pipeline()", ("--use_pipeline",))):
            for repeat in range(repeats):
                print(f"tiny, {label}, run {repeat + 1} ...", file=sys.stderr, flush=True)
                seconds, peak = _timed_predict(model, sample, tmp / "out.jsonl", *extra)
                rows.append(
                    _bulk_row(f"(a) tiny, {n_texts:,} texts, {label}", n_texts, seconds, peak)
                )
        for size in sizes:
            sample = _write_sample(texts, size, tmp / f"{size}.txt")
            for repeat in range(repeats):
                print(f"memory, {size:,} lines, run {repeat + 1} ...", file=sys.stderr, flush=True)
                seconds, peak = _timed_predict(model, sample, tmp / "out.jsonl")
                rows.append(_bulk_row(f"(b) tiny, {size:,} lines, bulk path", size, seconds, peak))
            sample.unlink()
    for _ in range(repeats):
        for row in run_all(dataclasses_replace(args, rows=",".join(LARGE_ROWS))):
            rows.append(_bulk_row(f"(c) 124M, {row.name}", 0, row.seconds, row.peak_memory_mb, row))
    return rows


#: (c): the pipeline as it runs today, as it ran before the model grouped texts by length, bulk.
LARGE_ROWS = ("pipe_hf_spam_batched", "pipe_hf_spam_every_position", "bulk_hf_spam")


def classifier_forward_flops(config: Any, lengths: list[int]) -> int:
    """FLOPs of the matrix products of hf_spam's classifier over unpadded texts of `lengths`
    tokens: every block's four attention projections and feed-forward at every token, but the
    last block's keys and values only at the others (its query, output and feed-forward run at
    each text's last token), and the head. Attention scores are left out (a few percent at SMS
    lengths), so no fp32 forward over these texts does less work."""
    d, hidden = config.emb_dim, 4 * config.emb_dim
    block = 4 * d * d + 2 * d * hidden  # multiply-adds per token
    tokens, texts = sum(lengths), len(lengths)
    macs = tokens * (block * (config.n_layers - 1) + 2 * d * d)
    macs += texts * (block - 2 * d * d + d * config.num_labels)
    return 2 * macs


def large_model_bound(args: BenchmarkArguments) -> str:
    """The fastest the 124M model can classify the SMS test texts here in fp32: its forward's
    FLOPs at this CPU's measured matrix-product rate."""
    from ..hardware import matmul_gflops
    from ..model.configuration import GPTConfig

    lengths = [len(ids) for ids in benchmark_data(args).dataset["test"]["input_ids"]]
    flops = classifier_forward_flops(GPTConfig(num_labels=2), lengths)
    rate = matmul_gflops()
    bound = len(lengths) / (flops / (rate * 1e9))
    return (f"(c) bound: {len(lengths)} texts, {sum(lengths):,} tokens, at least "
            f"{flops / 1e12:.2f} TFLOP of matrix products; this CPU multiplies fp32 matrices at "
            f"{rate:.0f} GFLOP/s, so no fp32 path exceeds {bound:.0f} texts/s")  # fmt: skip


def _bulk_row(name: str, n: int, seconds: float, peak: float, row: Row | None = None) -> dict:
    rate = row.examples_per_s if row else n / seconds
    note = row.note if row else "end to end, start-up included"
    return {"run": name, "texts/s": f"{rate:,.0f}", "s": f"{seconds:.1f}",
            "peak RSS MB": f"{peak:.0f}", "note": note}  # fmt: skip


def dataclasses_replace(args: BenchmarkArguments, **changes: Any) -> BenchmarkArguments:
    from dataclasses import replace

    return replace(args, quick=False, **changes)


def main(argv: list[str] | None = None) -> None:
    from transformers import HfArgumentParser

    from ..reporting import format_table

    (args,) = HfArgumentParser(BenchmarkArguments).parse_args_into_dataclasses(args=argv)
    table = run_bulk_benchmark(args)
    bound = large_model_bound(args)
    print(f"{cpu_name()} ({os.cpu_count()} CPUs), torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(format_table(table))
    print(bound)
