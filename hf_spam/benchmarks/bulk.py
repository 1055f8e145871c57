"""Bulk prediction: `hf-spam predict` end to end, the bulk path against `pipeline()`.

On the tiny classifier and the 124M model: (a) the tiny classifier (2 blocks of width 32, GPT-2's vocabulary) over 100k SMS-length texts,
end to end in a fresh process (imports and model load included), bulk path vs `--use_pipeline`
vs the bulk path on onnxruntime (`--backend onnxruntime`, the model exported to ONNX first);
(b) peak resident memory of the bulk path at 10k and 1M lines; (c) the 124M model, bulk vs the
batched pipeline over the SMS test texts (rows of the speed table, each in its own process), and
the fastest any fp32 path could be here: the forward's multiply-adds at this CPU's measured matrix
product rate. Every measurement runs `REPEATS` times.
"""

from __future__ import annotations

import random
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import speed
from .runner import Measured, load_average, machine_header, measure, progress
from .workload import QUICK_TEST_EXAMPLES, SmsArguments, benchmark_data, quick_flag

BULK_TEXTS = 100_000
BULK_MEMORY_SIZES = (10_000, 1_000_000)
QUICK_TEXTS, QUICK_MEMORY_SIZES = 5_000, (1_000, 20_000)
REPEATS = 2
#: The tiny classifier of the bulk rows: GPT-2's vocabulary and context, 2 blocks of width 32.
BULK_TINY_CONFIG = dict(emb_dim=32, n_layers=2, n_heads=4)
#: (a): `hf-spam predict`'s own path, the same command through `pipeline()`, and the bulk path on
#: onnxruntime: (the model folder it reads, its flags).
PREDICT_PATHS = {
    "bulk path": ("torch", ()),
    "pipeline()": ("torch", ("--use_pipeline",)),
    "onnxruntime": ("onnx", ("--backend", "onnxruntime")),
}
#: (c): the pipeline as it runs today, as it ran before the model grouped texts by length, bulk.
LARGE_ROWS = ("pipe_hf_spam_batched", "pipe_hf_spam_every_position", "bulk_hf_spam")


@dataclass
class BulkArguments(SmsArguments):
    """What the bulk prediction benchmark reads."""

    _argument_group_name = "bulk benchmark"

    quick: bool = quick_flag(
        f"{QUICK_TEXTS:,} texts for (a), {' and '.join(f'{n:,}' for n in QUICK_MEMORY_SIZES)} "
        f"lines for (b), {QUICK_TEST_EXAMPLES} test texts for (c)"
    )


def sms_texts(dataset: str) -> list[str]:
    """The SMS texts of the collection file (label TAB text per line); `sms_spam` is the copy
    bundled with the package."""
    if dataset == "sms_spam":
        from ..data.bundled import SMS_SPAM_FILENAME, bundled_file

        dataset = str(bundled_file(SMS_SPAM_FILENAME))
    with open(dataset, encoding="utf-8") as handle:
        return [line.split("\t", 1)[1].rstrip("\n") for line in handle if "\t" in line]


def _write_sample(texts: list[str], n: int, path: Path, seed: int = 0) -> Path:
    """`n` texts drawn (with repeats) from `texts`, one per line, written as they are drawn."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as handle:
        for _ in range(n):
            handle.write(rng.choice(texts).replace("\n", " ") + "\n")
    return path


def save_tiny_classifier(folder: Path) -> Path:
    """The bulk rows' tiny classifier (`BULK_TINY_CONFIG`, random weights, seed 123) with GPT-2's
    tokenizer, saved as training saves one."""
    from ..data import get_tokenizer
    from ..model.configuration import GPTConfig
    from ..model.modeling import GPTForSequenceClassification

    torch.manual_seed(123)
    config = GPTConfig(**BULK_TINY_CONFIG, num_labels=2, id2label={0: "ham", 1: "spam"})
    GPTForSequenceClassification(config).save_pretrained(folder)
    get_tokenizer().save_pretrained(folder)
    return folder


def _onnx_export(model: Path, folder: Path) -> Path | None:
    """`model` exported to ONNX (`hf-spam export --format onnx`); None without onnxruntime."""
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is None:
        progress("onnxruntime is not installed: no onnxruntime row (pip install 'hf_spam[onnx]')")
        return None
    from ..export import export_onnx

    progress("tiny, exporting to ONNX")
    return export_onnx(str(model), str(folder))


def timed_predict(model: Path, texts: Path, output: Path, *extra: str) -> Measured:
    """One `hf-spam predict` process, start-up included, as the runner measures its rows."""
    command = [sys.executable, "-m", "hf_spam.cli", "predict", "--model", str(model),
               "--input", str(texts), "--output", str(output), "--overwrite",
               "--progress", "false", *extra]  # fmt: skip
    return measure(command)


def bulk_row(
    name: str,
    texts: int,
    measured: Measured,
    rate: float | None = None,
    note: str = "end to end, start-up included",
) -> dict[str, str]:
    """A line of the table: `texts` over the measured seconds, unless the row gives its `rate`."""
    rate = texts / measured.seconds if rate is None else rate
    return {"run": name, "texts/s": f"{rate:,.0f}", "s": f"{measured.seconds:.1f}",
            "peak RSS MB": f"{measured.peak_memory_mb:.0f}", "note": note}  # fmt: skip


def run_bulk_benchmark(args: BulkArguments, repeats: int = REPEATS) -> list[dict[str, Any]]:
    """The table's rows: (a), (b), then (c), every measurement `repeats` times."""
    texts = sms_texts(args.dataset)
    n_texts = QUICK_TEXTS if args.quick else BULK_TEXTS
    sizes = QUICK_MEMORY_SIZES if args.quick else BULK_MEMORY_SIZES
    rows = []
    with tempfile.TemporaryDirectory(prefix="hf_spam-bulk-bench-") as tmp:
        tmp = Path(tmp)
        model = save_tiny_classifier(tmp / "tiny")
        folders = {"torch": model, "onnx": _onnx_export(model, tmp / "tiny-onnx")}
        sample = _write_sample(texts, n_texts, tmp / f"{n_texts}.txt")
        for label, (backend, extra) in PREDICT_PATHS.items():
            if folders[backend] is None:
                continue
            for repeat in range(repeats):
                progress(f"tiny, {label}, run {repeat + 1}")
                measured = timed_predict(folders[backend], sample, tmp / "out.jsonl", *extra)
                rows.append(bulk_row(f"(a) tiny, {n_texts:,} texts, {label}", n_texts, measured))
        for size in sizes:
            sample = _write_sample(texts, size, tmp / f"{size}.txt")
            for repeat in range(repeats):
                progress(f"memory, {size:,} lines, run {repeat + 1}")
                measured = timed_predict(model, sample, tmp / "out.jsonl")
                rows.append(bulk_row(f"(b) tiny, {size:,} lines, bulk path", size, measured))
            sample.unlink()
    speed_args = speed.SpeedArguments(dataset=args.dataset, test_examples=args.test_examples,
                                      inference_batch_size=args.inference_batch_size)  # fmt: skip
    for _ in range(repeats):
        for row in speed.measure_rows(speed_args, list(LARGE_ROWS)):
            measured = Measured(row.seconds, row.peak_memory_mb)
            rows.append(bulk_row(f"(c) 124M, {row.name}", 0, measured, row.examples_per_s,
                                 row.note))  # fmt: skip
    return rows


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


def bound_line(lengths: list[int], gflops: float) -> str:
    """The fastest the 124M model can classify texts of `lengths` tokens in fp32: its forward's
    FLOPs at `gflops`, a measured matrix-product rate."""
    from ..model.configuration import GPTConfig

    flops = classifier_forward_flops(GPTConfig(num_labels=2), lengths)
    bound = len(lengths) / (flops / (gflops * 1e9))
    return (f"(c) bound: {len(lengths)} texts, {sum(lengths):,} tokens, at least "
            f"{flops / 1e12:.2f} TFLOP of matrix products; this CPU multiplies fp32 matrices at "
            f"{gflops:.0f} GFLOP/s, so no fp32 path exceeds {bound:.0f} texts/s")  # fmt: skip


def large_model_bound(args: BulkArguments) -> str:
    """`bound_line` over the SMS test texts, at this CPU's rate."""
    from ..hardware import matmul_gflops

    lengths = [len(ids) for ids in benchmark_data(args).dataset["test"]["input_ids"]]
    return bound_line(lengths, matmul_gflops())


ARGUMENTS = BulkArguments


def main(args: BulkArguments) -> None:
    from ..files import write_json
    from ..reporting import format_table

    table = run_bulk_benchmark(args)
    bound = large_model_bound(args)
    print(machine_header(cpu=[f"load average {load_average()}"]))
    print(format_table(table))
    print(bound)
    if args.output_json:
        write_json(args.output_json, {"rows": table, "bound": bound})
