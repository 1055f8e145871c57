"""Speed and memory of the book's workload: the plain approach against hf_spam's training path.

The workload is chapter 6's: the balanced SMS split, GPT-2 124M shape, the last block + final norm
+ head trainable, batch 8, AdamW (lr 5e-5, weight decay 0.1). Random weights: the compute is the
same as with pretrained ones. Every row runs in its own process (`runner`), so peak memory (max
RSS) and warm-up belong to that row alone.

* `baseline`: transformers' `GPT2ForSequenceClassification` with dropout 0 (as the book's and
  hf_spam's GPT), every text padded to the longest training text (as the book's `SpamDataset`
  does), trained by a plain PyTorch loop.
* `hf_spam`: `hf_spam.training.run.train` with its defaults, then with each speed feature switched
  off in turn, then with `--bf16`.
* inference: `pipeline("text-classification")` over the test texts for both models, at the
  pipeline's defaults and with batching, and hf_spam's bulk path.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import UsageError
from ..hardware import cpu_has_fast_bf16
from .runner import Row, machine_header, progress, registry, run_row, training_flags
from .workload import (
    QUICK_TEST_EXAMPLES,
    SmsArguments,
    baseline_model,
    benchmark_data,
    bf16_note,
    data_summary,
    inference_texts,
    mean_seconds,
    quick_flag,
    save_model,
)

EPOCHS = 5
BATCH_SIZE = 8


@dataclass
class SpeedArguments(SmsArguments):
    """What the speed benchmark runs, on how much data."""

    _argument_group_name = "speed benchmark"

    quick: bool = quick_flag(
        f"2 epochs, 48 training and {QUICK_TEST_EXAMPLES} test texts, the headline rows"
    )
    epochs: int | None = field(default=None, metadata={"help": "Epochs (default 5; quick: 2)."})
    train_examples: int | None = field(
        default=None, metadata={"help": "Use only this many training texts (quick: 48)."}
    )
    rows: str | None = field(
        default=None, metadata={"help": "Comma-separated row names to run (default: all)."}
    )

    def __post_init__(self) -> None:
        if self.quick:
            self.epochs = self.epochs or 2
            self.train_examples = self.train_examples or 48
        self.epochs = self.epochs or EPOCHS
        super().__post_init__()
        unknown = sorted(set(self.row_names) - set(ROWS))
        if unknown:  # before any row
            raise UsageError(
                f"--rows {self.rows}: unknown row{'s' * (len(unknown) > 1)} "
                f"{', '.join(unknown)}; choose from {', '.join(ROWS)}"
            )

    @property
    def split_sizes(self) -> dict[str, int | None]:
        return {"train": self.train_examples, **super().split_sizes}

    @property
    def row_names(self) -> list[str]:
        """The rows to run, in the order asked for."""
        if self.rows:
            return self.rows.split(",")
        return QUICK_ROWS if self.quick else list(ROWS)


@dataclass
class SpeedRecord:
    """One row of the table (also its `--output_json` entry). The row's function measures
    `kind` to `note`; the parent adds the row's label (`name`) and its process's peak memory."""

    name: str = ""
    kind: str = "train"  # or "inference"
    examples_per_s: float = 0.0
    seconds: float = 0.0  # training: all epochs; inference: all test texts
    epochs: int = 0
    test_accuracy: float | None = None
    peak_memory_mb: float = 0.0
    note: str = ""


# ------------------------------------------------------------------------------------------------
# Training rows
# ------------------------------------------------------------------------------------------------


def train_baseline(args: SpeedArguments) -> SpeedRecord:
    """The book's loop (`train_classifier_simple`) around transformers' GPT-2 classifier."""
    prepared = benchmark_data(args, padding="longest_train")  # the book's split: 120 tokens
    train = prepared.dataset["train"].with_format("torch", columns=["input_ids", "label"])
    test = prepared.dataset["test"].with_format("torch", columns=["input_ids", "label"])
    model = baseline_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.1)
    generator = torch.Generator().manual_seed(123)
    loader = torch.utils.data.DataLoader(
        train, batch_size=BATCH_SIZE, shuffle=True, drop_last=True, generator=generator
    )
    seen = 0
    start = time.perf_counter()
    for _ in range(args.epochs):
        model.train()
        for batch in loader:
            optimizer.zero_grad()
            logits = model(input_ids=batch["input_ids"]).logits
            loss = torch.nn.functional.cross_entropy(logits, batch["label"])
            loss.backward()
            optimizer.step()
            seen += len(batch["label"])
    seconds = time.perf_counter() - start
    model.eval()
    correct = 0
    with torch.no_grad():
        for batch in torch.utils.data.DataLoader(test, batch_size=32):
            correct += (
                model(input_ids=batch["input_ids"]).logits.argmax(-1) == batch["label"]
            ).sum()
    return SpeedRecord(kind="train", examples_per_s=seen / seconds, seconds=seconds,
                       epochs=args.epochs, test_accuracy=float(correct) / len(test),
                       note=f"padded to {prepared.max_length} tokens")  # fmt: skip


def train_hf_spam(args: SpeedArguments, flags: tuple[str, ...] = ()) -> SpeedRecord:
    """`hf-spam train` with its defaults and `flags`, on the baseline's data cut."""
    from ..training.arguments import parse_train_arguments
    from ..training.run import train

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "trunk-features"
        argv = training_flags(tmp, args.epochs, store, "--dataset", args.dataset, *flags)
        model_args, data_args, training_args = parse_train_arguments(argv)
        prepared = benchmark_data(args, data_args=data_args)  # the same cut as for the baseline
        result = train(model_args, data_args, training_args, prepared=prepared)
    m = result.metrics
    # The store is built before Trainer's clock starts; the book's loop pays that pass in its epochs.
    seconds = m["train_runtime"] + result.trunk_seconds
    rate = len(prepared.dataset["train"]) * args.epochs / seconds
    return SpeedRecord(kind="train", examples_per_s=rate, seconds=seconds, epochs=args.epochs,
                       test_accuracy=m["test_accuracy"],
                       note=bf16_note() if "--bf16" in flags else "")  # fmt: skip


# ------------------------------------------------------------------------------------------------
# Inference rows
# ------------------------------------------------------------------------------------------------


def run_pipeline(
    args: SpeedArguments,
    model: str,
    batch: bool = False,
    every_position: bool = False,
    bf16: bool = False,
) -> SpeedRecord:
    """`pipeline("text-classification")` over the test texts: the `model` ("transformers" or
    "hf_spam") at batch size 1 or `--inference_batch_size`, fp32 or bf16."""
    from transformers import pipeline

    import hf_spam  # noqa: F401 - registers the Auto classes

    texts = inference_texts(args)
    with tempfile.TemporaryDirectory() as tmp:
        save_model(model, Path(tmp))
        kwargs: dict[str, Any] = {"dtype": torch.bfloat16} if bf16 else {}
        clf = pipeline("text-classification", model=tmp, **kwargs)
        if every_position:  # the forward before the model grouped by length
            clf.model.skip_padding_work = False
        call = {"batch_size": args.inference_batch_size} if batch else {}
        seconds = mean_seconds(lambda: clf(texts, **call))
    note = f"batch_size={args.inference_batch_size}" if batch else "batch_size=1"
    note += ", no length grouping in the model" if every_position else ""
    emulated = bf16_note() if bf16 else ""
    note += f", {emulated}" if emulated else ""
    return SpeedRecord(kind="inference", examples_per_s=len(texts) / seconds, seconds=seconds,
                       note=note)  # fmt: skip


def run_bulk(args: SpeedArguments) -> SpeedRecord:
    """The 124M hf_spam model through the bulk path (`hf-spam predict`'s) over the test texts,
    timed as the pipeline rows are."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ..inference.bulk import classify_bulk

    texts = inference_texts(args)
    batch_size = args.inference_batch_size
    with tempfile.TemporaryDirectory() as tmp:
        save_model("hf_spam", Path(tmp))
        model = AutoModelForSequenceClassification.from_pretrained(tmp).eval()
        tokenizer = AutoTokenizer.from_pretrained(tmp)
        seconds = mean_seconds(
            lambda: list(classify_bulk(model, tokenizer, texts, batch_size=batch_size))
        )
    return SpeedRecord(kind="inference", examples_per_s=len(texts) / seconds, seconds=seconds,
                       note=f"batch_size={batch_size}, length-sorted")  # fmt: skip


# ------------------------------------------------------------------------------------------------
# The table
# ------------------------------------------------------------------------------------------------


def _hf_spam(name: str, what: str, *flags: str) -> Row:
    return Row(name, what, train_hf_spam, {"flags": flags})


def _pipeline(name: str, what: str, model: str, **options: bool) -> Row:
    return Row(name, what, run_pipeline, {"model": model, **options})


ARGUMENTS = SpeedArguments
ROWS = registry(
    Row("baseline", "baseline: transformers GPT-2, padded to longest, plain loop", train_baseline),
    _hf_spam("hf_spam", "hf_spam default (fp32)"),
    _hf_spam("no_group_by_length", "  without length-grouped batches",
             "--train_sampling_strategy", "random"),
    _hf_spam("no_dynamic_padding", "  without dynamic padding", "--padding", "longest_train"),
    _hf_spam("no_cache", "  without frozen-trunk cache", "--frozen_trunk_cache", "false"),
    _hf_spam("no_skip_padding", "  without last-token/length-bucket forward",
             "--skip_padding_work", "false"),
    _hf_spam("bf16", "hf_spam --bf16", "--bf16", "true"),
    _pipeline("pipe_transformers", "pipeline: transformers GPT-2 (defaults)", "transformers"),
    _pipeline("pipe_transformers_batched", "pipeline: transformers GPT-2, batched",
              "transformers", batch=True),
    _pipeline("pipe_hf_spam", "pipeline: hf_spam (defaults)", "hf_spam"),
    _pipeline("pipe_hf_spam_batched", "pipeline: hf_spam, batched", "hf_spam", batch=True),
    _pipeline("pipe_hf_spam_every_position", "pipeline: hf_spam, batched, every padded position",
              "hf_spam", batch=True, every_position=True),
    _pipeline("pipe_hf_spam_bf16", "pipeline: hf_spam, batched, bf16", "hf_spam",
              batch=True, bf16=True),
    Row("bulk_hf_spam", "bulk: hf_spam", run_bulk),
)  # fmt: skip
# --quick: the headline rows only (each row is a process start, model build and data load).
QUICK_ROWS = ["baseline", "hf_spam", "bf16", "pipe_transformers", "pipe_hf_spam_batched"]


def measure_rows(args: SpeedArguments, names: list[str]) -> list[SpeedRecord]:
    """The rows `names`, each in a fresh process (`runner.run_row`)."""
    records = []
    for name in names:
        progress(f"running {name}")
        result = run_row(__name__, ROWS[name], args)
        record = SpeedRecord(**result.records[0])
        records.append(dataclasses.replace(record, name=ROWS[name].what,
                                           peak_memory_mb=result.peak_memory_mb))  # fmt: skip
    return records


def format_rows(rows: list[SpeedRecord]) -> str:
    from ..reporting import format_table

    base_train = next((r for r in rows if r.name.startswith("baseline")), None)
    base_infer = next((r for r in rows if r.name.endswith("GPT-2 (defaults)")), None)
    table = []
    for r in rows:
        base = base_train if r.kind == "train" else base_infer
        training = r.kind == "train"
        table.append(
            {
                "run": r.name,
                "examples/s": f"{r.examples_per_s:.1f}",
                "s/epoch": f"{r.seconds / r.epochs:.1f}" if training else "",
                "s (all epochs | all texts)": f"{r.seconds:.1f}",
                "peak MB": f"{r.peak_memory_mb:.0f}",
                "test acc": f"{r.test_accuracy:.4f}" if r.test_accuracy is not None else "",
                "x baseline": f"{r.examples_per_s / base.examples_per_s:.1f}x" if base else "",
                "note": r.note,
            }
        )
    return format_table(table)


def header(args: SpeedArguments) -> str:
    fast_bf16 = "yes" if cpu_has_fast_bf16() else "no"
    return machine_header(f"epochs={args.epochs}", cpu=[f"fast bf16 (AMX): {fast_bf16}"])


def main(args: SpeedArguments) -> None:
    from ..files import write_json

    rows = measure_rows(args, args.row_names)
    print(header(args))
    print(data_summary(args))
    print(format_rows(rows))
    if args.output_json:
        write_json(args.output_json, [dataclasses.asdict(r) for r in rows])
