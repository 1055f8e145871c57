"""What every export starts from and ends with: the checked model folder, loaded; probe batches
to compare the export with it; the tokenizer and a card note beside the exported model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..errors import HfSpamError, UsageError
from ..files import write_text
from ..inference.load import check_classifier_folder, label_names


class ExportError(HfSpamError, RuntimeError):
    """An export that could not be made or did not match the model; nothing was written."""


#: The classifier class an export reads (`architectures` in a saved folder's config.json).
CLASSIFIER = "GPTForSequenceClassification"
#: Lengths of the probe rows, cut to the model's context: short SMS to a few dozen tokens.
PROBE_LENGTHS = (1, 2, 5, 9, 17, 30)


def load_source(folder: str | os.PathLike) -> tuple[Any, Any, Path]:
    """The trained classifier in `folder` (eval mode, fp32) and its tokenizer, after the shared
    folder check; anything but hf_spam's classifier is refused, naming its class."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = check_classifier_folder(folder)
    model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32)
    if type(model).__name__ != CLASSIFIER:
        raise UsageError(
            f"--model {path}: a {type(model).__name__}, not hf_spam's {CLASSIFIER}; export "
            "reads folders written by hf-spam train or hf-spam convert --head classification"
        )
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:  # the book pads with end-of-text
        tokenizer.pad_token = tokenizer.eos_token
    return model.eval(), tokenizer, path


def probe_rows(config: Any, avoid: int | None, seed: int = 0) -> list[list[int]]:
    """Token rows of `PROBE_LENGTHS` (at most the context) with ids drawn from the vocabulary,
    never `avoid` (the pad id: a tokenizer never gives it for text)."""
    generator = torch.Generator().manual_seed(seed)
    lengths = sorted({min(n, config.context_length) for n in PROBE_LENGTHS})
    rows = []
    for length in lengths:
        ids = torch.randint(0, config.vocab_size - 1, (length,), generator=generator)
        if avoid is not None:
            ids = ids + (ids >= avoid).long()  # skip `avoid`, stay in the vocabulary
        rows.append(ids.tolist())
    return rows


def padded(tokenizer: Any, rows: list[list[int]], side: str) -> dict[str, torch.Tensor]:
    """`input_ids` and `attention_mask` of `rows`, padded by the tokenizer on `side`."""
    previous, tokenizer.padding_side = tokenizer.padding_side, side
    try:
        batch = tokenizer.pad({"input_ids": rows}, padding=True, return_tensors="pt")
    finally:
        tokenizer.padding_side = previous
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


def worst_difference(expected: torch.Tensor, got: torch.Tensor) -> float:
    """The largest difference of two logit tables, relative to 1 + the logit's size."""
    expected, got = expected.double(), got.double()
    return float(((got - expected).abs() / (1 + expected.abs())).max())


def write_card_note(
    folder: Path,
    source: Path,
    config: Any,
    title: str,
    usage: str,
    notes: list[str],
    tags: list[str],
    library: str | None = None,
) -> None:
    """A README.md for an exported folder: what it is, where it came from, how to use it."""
    labels = ", ".join(f"{i}: {name}" for i, name in enumerate(label_names(config)))
    library_line = [f"library_name: {library}"] if library else []
    front = "\n".join(["---", *library_line, "pipeline_tag: text-classification", "tags:",
                       *(f"- {tag}" for tag in tags), "---"])  # fmt: skip
    body = [
        f"# {source.name}: {title}",
        "",
        f"Exported by `hf-spam export` from the hf_spam classifier `{source.name}` "
        f"({config.n_layers} blocks, emb_dim {config.emb_dim}, context {config.context_length}).",
        f"Labels: {labels}.",
        "",
        "```python",
        usage.strip(),
        "```",
        "",
        *(f"- {note}" for note in notes),
    ]
    write_text(folder / "README.md", front + "\n\n" + "\n".join(body) + "\n")
