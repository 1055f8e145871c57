"""Speed and memory of the book's workload: the plain approach against hf_spam's training path.

The workload is chapter 6's: the balanced SMS split, GPT-2 124M shape, the last block + final norm
+ head trainable, batch 8, AdamW (lr 5e-5, weight decay 0.1). Random weights: the compute is the
same as with pretrained ones. Every row runs in its own process, so peak memory (max RSS) and
warm-up belong to that row alone.

* `baseline`: transformers' `GPT2ForSequenceClassification` with dropout 0 (as the book's and
  hf_spam's GPT), every text padded to the longest training text (as the book's `SpamDataset`
  does), trained by a plain PyTorch loop.
* `hf_spam`: `hf_spam.training.run.train` with its defaults, then with each speed feature switched
  off in turn, then with `--bf16`.
* inference: `pipeline("text-classification")` over the test texts for both models, at the
  pipeline's defaults and with batching.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import DataError, UsageError
from ..hardware import cpu_has_fast_bf16, cpu_name

EPOCHS = 5
INFERENCE_REPEATS = 2
BATCH_SIZE = 8


@dataclass
class BenchmarkArguments:
    """What the benchmark runs, on how much data."""

    _argument_group_name = "benchmark"

    dataset: str = field(
        default=os.environ.get("HF_SPAM_SMS_FILE", "sms_spam"),
        metadata={"help": "SMSSpamCollection file, or 'sms_spam' to download it."},
    )
    quick: bool = field(
        default=False,
        metadata={"help": "Reduced run (fewer examples and epochs), under two minutes."},
    )
    epochs: int | None = field(default=None, metadata={"help": "Epochs (default 5; quick: 2)."})
    train_examples: int | None = field(
        default=None, metadata={"help": "Use only this many training texts (quick: 48)."}
    )
    test_examples: int | None = field(
        default=None, metadata={"help": "Use only this many test texts (quick: 64)."}
    )
    inference_batch_size: int = field(default=128, metadata={"help": "pipeline(batch_size=...)"})
    rows: str | None = field(
        default=None, metadata={"help": "Comma-separated row names to run (default: all)."}
    )
    output_json: str | None = field(default=None, metadata={"help": "Also write rows as JSON."})
    row: str | None = field(default=None, metadata={"help": "(internal) run one row and exit."})
    bulk: bool = field(
        default=False,
        metadata={
            "help": "Benchmark bulk prediction (hf-spam predict); see hf_spam.benchmarks.bulk."
        },
    )

    def __post_init__(self) -> None:
        if self.quick:
            self.epochs = self.epochs or 2
            self.train_examples = self.train_examples or 48
            self.test_examples = self.test_examples or 64
        self.epochs = self.epochs or EPOCHS
        if self.dataset != "sms_spam" and not Path(self.dataset).is_file():  # before any row
            what = "is a folder" if Path(self.dataset).is_dir() else "file not found"
            raise DataError(
                f"--dataset {self.dataset}: {what}; give the SMSSpamCollection file or sms_spam"
            )


@dataclass
class Row:
    name: str
    kind: str  # "train" or "inference"
    examples_per_s: float
    seconds: float  # training: all epochs; inference: all test texts
    epochs: int = 0
    test_accuracy: float | None = None
    peak_memory_mb: float = 0.0
    note: str = ""


# ------------------------------------------------------------------------------------------------
# Data, shared by every row
# ------------------------------------------------------------------------------------------------


def benchmark_data(
    args: BenchmarkArguments,
    padding: str = "dynamic",
    max_length: int | None = None,
    data_args: Any = None,
):
    """The data of every row, cut to --train_examples/--test_examples."""
    from ..data import DataArguments, prepare_data

    data_args = data_args or DataArguments(
        dataset=args.dataset, padding=padding, max_length=max_length
    )
    prepared = prepare_data(data_args)
    if args.train_examples:
        prepared.dataset["train"] = prepared.dataset["train"].select(range(args.train_examples))
    if args.test_examples:
        prepared.dataset["test"] = prepared.dataset["test"].select(range(args.test_examples))
    return prepared


def data_summary(args: BenchmarkArguments) -> str:
    """The texts and GPT-2 tokens every row works on, for the printed header."""
    prepared = benchmark_data(args)
    counts = []
    for split in ("train", "test"):
        lengths = [len(ids) for ids in prepared.dataset[split]["input_ids"]]
        counts.append(f"{split} {len(lengths)} texts / {sum(lengths):,} tokens")
    return f"data: {prepared.report.source}, split {prepared.report.split}: {', '.join(counts)}"


# ------------------------------------------------------------------------------------------------
# Training rows
# ------------------------------------------------------------------------------------------------


def _baseline_model():
    from transformers import GPT2Config, GPT2ForSequenceClassification

    torch.manual_seed(123)
    # GPT2Config's dropout defaults to 0.1; the book fine-tunes with drop_rate 0.0, as hf_spam does.
    no_dropout = {"embd_pdrop": 0.0, "attn_pdrop": 0.0, "resid_pdrop": 0.0}
    config = GPT2Config(num_labels=2, pad_token_id=50256, **no_dropout)
    model = GPT2ForSequenceClassification(config)
    for param in model.parameters():
        param.requires_grad = False
    for module in (model.transformer.h[-1], model.transformer.ln_f, model.score):
        for param in module.parameters():
            param.requires_grad = True
    return model


def train_baseline(args: BenchmarkArguments) -> Row:
    """The book's loop (`train_classifier_simple`) around transformers' GPT-2 classifier."""
    prepared = benchmark_data(args, padding="longest_train")  # the book's split: 120 tokens
    train = prepared.dataset["train"].with_format("torch", columns=["input_ids", "label"])
    test = prepared.dataset["test"].with_format("torch", columns=["input_ids", "label"])
    model = _baseline_model()
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
    return Row(
        "baseline: transformers GPT-2, padded to longest, plain loop",
        "train",
        seen / seconds,
        seconds,
        args.epochs,
        float(correct) / len(test),
        note=f"padded to {prepared.max_length} tokens",
    )


HF_SPAM_ROWS: dict[str, tuple[str, list[str]]] = {
    "hf_spam": ("hf_spam default (fp32)", []),
    "no_group_by_length": (
        "  without length-grouped batches",
        ["--train_sampling_strategy", "random"],
    ),
    "no_dynamic_padding": ("  without dynamic padding", ["--padding", "longest_train"]),
    "no_cache": ("  without frozen-trunk cache", ["--frozen_trunk_cache", "false"]),
    "no_skip_padding": (
        "  without last-token/length-bucket forward",
        ["--skip_padding_work", "false"],
    ),
    "bf16": ("hf_spam --bf16", ["--bf16", "true"]),
}


def train_hf_spam(args: BenchmarkArguments, row: str) -> Row:
    from transformers import HfArgumentParser

    from ..data import DataArguments
    from ..training import run as training

    label, extra = HF_SPAM_ROWS[row]
    with tempfile.TemporaryDirectory() as tmp:
        argv = [
            "--model_name_or_path", "openai-community/gpt2", "--init", "random",
            "--dataset", args.dataset, "--output_dir", tmp, "--overwrite_output_dir", "true",
            "--num_train_epochs", str(args.epochs), "--eval_strategy", "no",
            "--save_strategy", "no", "--eval_on_train", "false", "--disable_tqdm", "true",
            "--logging_strategy", "no", *extra,
            # A fresh feature store: a store left by an earlier run would skip the trunk pass.
            "--trunk_cache_dir", str(Path(tmp) / "trunk-features"),
        ]  # fmt: skip
        parser = HfArgumentParser(
            (training.ModelArguments, DataArguments, training.SpamTrainingArguments)
        )
        model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
        prepared = benchmark_data(args, data_args=data_args)  # the same cut as for the baseline
        result = training.train(model_args, data_args, training_args, prepared=prepared)
    m = result.metrics
    # The store is built before Trainer's clock starts; the book's loop pays that pass in its epochs.
    seconds = m["train_runtime"] + result.trunk_seconds
    return Row(
        label,
        "train",
        len(prepared.dataset["train"]) * args.epochs / seconds,
        seconds,
        args.epochs,
        m["test_accuracy"],
        note=_bf16_note() if row == "bf16" else "",
    )


def _bf16_note() -> str:
    """A fact about the CPU, not a verdict: without AMX bf16 was slower than fp32 on some CPUs and
    faster on others (Zen 4 with AVX512-BF16); the row's ratio is the measurement."""
    return "" if cpu_has_fast_bf16() else "no AMX: compare with the fp32 row"


# ------------------------------------------------------------------------------------------------
# Inference rows
# ------------------------------------------------------------------------------------------------


def _saved_model(kind: str, folder: Path) -> None:
    from ..data import get_tokenizer

    if kind == "transformers":
        model = _baseline_model()
    else:
        from ..model.configuration import GPTConfig
        from ..model.modeling import GPTForSequenceClassification

        torch.manual_seed(123)
        model = GPTForSequenceClassification(
            GPTConfig(num_labels=2, id2label={0: "ham", 1: "spam"})
        )
    model.save_pretrained(folder)
    get_tokenizer().save_pretrained(folder)


INFERENCE_ROWS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "pipe_transformers": ("pipeline: transformers GPT-2 (defaults)", "transformers", {}),
    "pipe_transformers_batched": (
        "pipeline: transformers GPT-2, batched",
        "transformers",
        {"batch": True},
    ),  # fmt: skip
    "pipe_hf_spam": ("pipeline: hf_spam (defaults)", "hf_spam", {}),
    "pipe_hf_spam_batched": ("pipeline: hf_spam, batched", "hf_spam", {"batch": True}),
    "pipe_hf_spam_every_position": (
        "pipeline: hf_spam, batched, every padded position",
        "hf_spam",
        {"batch": True, "every_position": True},
    ),  # fmt: skip
    "pipe_hf_spam_bf16": (
        "pipeline: hf_spam, batched, bf16",
        "hf_spam",
        {"batch": True, "bf16": True},
    ),  # fmt: skip
}


def run_inference(args: BenchmarkArguments, row: str) -> Row:
    from transformers import pipeline

    import hf_spam  # noqa: F401 - registers the Auto classes

    label, kind, options = INFERENCE_ROWS[row]
    texts = list(benchmark_data(args).dataset["test"]["text"])
    with tempfile.TemporaryDirectory() as tmp:
        _saved_model(kind, Path(tmp))
        kwargs: dict[str, Any] = {}
        if options.get("bf16"):
            kwargs["dtype"] = torch.bfloat16
        clf = pipeline("text-classification", model=tmp, **kwargs)
        if options.get("every_position"):  # the forward before the model grouped by length
            clf.model.skip_padding_work = False
        call = {"batch_size": args.inference_batch_size} if options.get("batch") else {}
        clf(texts, **call)  # warm-up: first calls build kernels for each new shape
        start = time.perf_counter()
        for _ in range(INFERENCE_REPEATS):
            clf(texts, **call)
        seconds = (time.perf_counter() - start) / INFERENCE_REPEATS
    note = f"batch_size={args.inference_batch_size}" if options.get("batch") else "batch_size=1"
    note += ", no length grouping in the model" if options.get("every_position") else ""
    emulated = _bf16_note() if options.get("bf16") else ""
    note += f", {emulated}" if emulated else ""
    return Row(label, "inference", len(texts) / seconds, seconds, note=note)


# ------------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------------

ALL_ROWS = ["baseline", *HF_SPAM_ROWS, *INFERENCE_ROWS, "bulk_hf_spam"]
# --quick: the headline rows only (each row is a process start, model build and data load).
QUICK_ROWS = ["baseline", "hf_spam", "bf16", "pipe_transformers", "pipe_hf_spam_batched"]


def run_row(args: BenchmarkArguments, row: str) -> Row:
    """Run one row in this process (the driver calls this in a fresh process per row)."""
    torch.manual_seed(123)
    if row == "baseline":
        result = train_baseline(args)
    elif row in HF_SPAM_ROWS:
        result = train_hf_spam(args, row)
    elif row == "bulk_hf_spam":
        result = run_bulk_inference(args)
    else:
        result = run_inference(args, row)
    result.peak_memory_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def _child_argv(args: BenchmarkArguments) -> list[str]:
    argv = ["--dataset", args.dataset, "--epochs", str(args.epochs)]
    argv += ["--inference_batch_size", str(args.inference_batch_size)]
    for name in ("train_examples", "test_examples"):
        if getattr(args, name):
            argv += [f"--{name}", str(getattr(args, name))]
    return argv


def run_all(args: BenchmarkArguments) -> list[Row]:
    """Each row in a fresh process, so its peak memory and warm-up are its own."""
    rows = args.rows.split(",") if args.rows else QUICK_ROWS if args.quick else ALL_ROWS
    unknown = sorted(set(rows) - set(ALL_ROWS))
    if unknown:
        raise UsageError(
            f"--rows {args.rows}: unknown row{'s' * (len(unknown) > 1)} {', '.join(unknown)}; "
            f"choose from {', '.join(ALL_ROWS)}"
        )
    results = []
    for row in rows:
        print(f"running {row} ...", file=sys.stderr, flush=True)
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            # Through the command's error path: a failing row prints one `error:` line, no
            # traceback, and this process exits with its status without adding another line.
            cmd = [sys.executable, "-m", "hf_spam.cli", "benchmark", *_child_argv(args)]
            cmd += ["--row", row, "--output_json", out.name]
            status = subprocess.run(cmd, stdout=subprocess.DEVNULL).returncode
            if status:
                raise SystemExit(status)
            results.append(Row(**json.loads(Path(out.name).read_text())))
    return results


def format_rows(rows: list[Row]) -> str:
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


def main(argv: list[str] | None = None) -> None:
    from transformers import HfArgumentParser

    (args,) = HfArgumentParser(BenchmarkArguments).parse_args_into_dataclasses(args=argv)
    if args.row:
        row = run_row(args, args.row)
        Path(args.output_json).write_text(json.dumps(asdict(row)))
        return
    rows = run_all(args)
    print(
        f"{cpu_name()} ({os.cpu_count()} CPUs, fast bf16 (AMX): "
        f"{'yes' if cpu_has_fast_bf16() else 'no'}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, epochs={args.epochs}"
    )
    print(data_summary(args))
    print(format_rows(rows))
    if args.output_json:
        Path(args.output_json).write_text(json.dumps([asdict(r) for r in rows], indent=2))


def run_bulk_inference(args: BenchmarkArguments) -> Row:
    """The 124M hf_spam model through the bulk path over the test texts (timed like
    `run_inference`: one warm-up pass, then the mean of `INFERENCE_REPEATS` passes)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ..inference.bulk import classify_bulk

    texts = list(benchmark_data(args).dataset["test"]["text"])
    with tempfile.TemporaryDirectory() as tmp:
        _saved_model("hf_spam", Path(tmp))
        model = AutoModelForSequenceClassification.from_pretrained(tmp).eval()
        tokenizer = AutoTokenizer.from_pretrained(tmp)
        batch_size = args.inference_batch_size
        run = lambda: list(classify_bulk(model, tokenizer, texts, batch_size=batch_size))  # noqa: E731
        run()
        start = time.perf_counter()
        for _ in range(INFERENCE_REPEATS):
            run()
        seconds = (time.perf_counter() - start) / INFERENCE_REPEATS
    return Row("bulk: hf_spam", "inference", len(texts) / seconds, seconds,
               note=f"batch_size={batch_size}, length-sorted")  # fmt: skip


if __name__ == "__main__":  # each row of `run_all` runs here, in its own process
    main()
