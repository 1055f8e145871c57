"""The book's SMS workload, shared by the speed and bulk tables: its flags, its data cut, the
models it runs and how an inference pass is timed.

The workload is chapter 6's: the balanced SMS split, GPT-2 124M shape with random weights (the
compute is the same as with pretrained ones).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import DataError
from ..hardware import cpu_has_fast_bf16

#: Inference is timed as the mean of this many passes, after one warm-up pass.
INFERENCE_REPEATS = 2
QUICK_TEST_EXAMPLES = 64


def quick_flag(what: str) -> Any:
    """The `--quick` field of a table, its help saying what the reduced run runs."""
    return field(default=False, metadata={"help": f"A reduced run: {what}."})


@dataclass
class SmsArguments:
    """The flags of every table over the SMS workload (each table's dataclass adds its own)."""

    dataset: str = field(
        default=os.environ.get("HF_SPAM_SMS_FILE", "sms_spam"),
        metadata={
            "help": "SMSSpamCollection file, or 'sms_spam' for the copy bundled with the package."
        },
    )
    quick: bool = quick_flag("fewer texts")
    test_examples: int | None = field(
        default=None, metadata={"help": f"Use only this many test texts (quick: "
                                        f"{QUICK_TEST_EXAMPLES})."}
    )  # fmt: skip
    inference_batch_size: int = field(default=128, metadata={"help": "pipeline(batch_size=...)"})
    output_json: str | None = field(default=None, metadata={"help": "Also write rows as JSON."})

    def __post_init__(self) -> None:
        if self.quick:
            self.test_examples = self.test_examples or QUICK_TEST_EXAMPLES
        if self.dataset != "sms_spam" and not Path(self.dataset).is_file():  # before any row
            what = "is a folder" if Path(self.dataset).is_dir() else "file not found"
            raise DataError(
                f"--dataset {self.dataset}: {what}; give the SMSSpamCollection file or sms_spam"
            )

    @property
    def split_sizes(self) -> dict[str, int | None]:
        """How many texts of each split the rows use (None: all)."""
        return {"test": self.test_examples}


def benchmark_data(
    args: SmsArguments,
    padding: str = "dynamic",
    max_length: int | None = None,
    data_args: Any = None,
):
    """The data of every row, cut to `args.split_sizes`."""
    from ..data import DataArguments, prepare_data

    data_args = data_args or DataArguments(
        dataset=args.dataset, padding=padding, max_length=max_length
    )
    prepared = prepare_data(data_args)
    for split, size in args.split_sizes.items():
        if size:
            prepared.dataset[split] = prepared.dataset[split].select(range(size))
    return prepared


def data_summary(args: SmsArguments) -> str:
    """The texts and GPT-2 tokens every row works on, for the printed header."""
    prepared = benchmark_data(args)
    counts = []
    for split in ("train", "test"):
        lengths = [len(ids) for ids in prepared.dataset[split]["input_ids"]]
        counts.append(f"{split} {len(lengths)} texts / {sum(lengths):,} tokens")
    return f"data: {prepared.report.source}, split {prepared.report.split}: {', '.join(counts)}"


def inference_texts(args: SmsArguments) -> list[str]:
    """The test texts the inference rows classify."""
    return list(benchmark_data(args).dataset["test"]["text"])


def baseline_model():
    """transformers' `GPT2ForSequenceClassification` of GPT-2 124M's shape, trainable as the
    book's: the last block, the final norm and the head."""
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


def save_model(kind: str, folder: Path) -> Path:
    """A model folder `pipeline()` and `from_pretrained` read: transformers' GPT-2 classifier
    (`kind` "transformers") or hf_spam's (`kind` "hf_spam"), with GPT-2's tokenizer."""
    from ..data import get_tokenizer

    if kind == "transformers":
        model = baseline_model()
    else:
        from ..model.configuration import GPTConfig
        from ..model.modeling import GPTForSequenceClassification

        torch.manual_seed(123)
        model = GPTForSequenceClassification(
            GPTConfig(num_labels=2, id2label={0: "ham", 1: "spam"})
        )
    model.save_pretrained(folder)
    get_tokenizer().save_pretrained(folder)
    return folder


def mean_seconds(run: Callable[[], Any], repeats: int = INFERENCE_REPEATS) -> float:
    """Seconds per call of `run`: one warm-up call (the first calls build kernels for each new
    shape), then the mean of `repeats` calls."""
    run()
    start = time.perf_counter()
    for _ in range(repeats):
        run()
    return (time.perf_counter() - start) / repeats


def bf16_note() -> str:
    """A fact about the CPU, not a verdict: without AMX bf16 was slower than fp32 on some CPUs and
    faster on others (Zen 4 with AVX512-BF16); the row's ratio is the measurement."""
    return "" if cpu_has_fast_bf16() else "no AMX: compare with the fp32 row"


__all__ = [
    "INFERENCE_REPEATS",
    "QUICK_TEST_EXAMPLES",
    "SmsArguments",
    "baseline_model",
    "benchmark_data",
    "bf16_note",
    "data_summary",
    "inference_texts",
    "mean_seconds",
    "quick_flag",
    "save_model",
]
