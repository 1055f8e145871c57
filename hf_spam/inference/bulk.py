"""Bulk prediction at the speed of the model: many texts, streamed in and out, in constant memory.

`pipeline()` answers one text at a time through Python (preprocess, collate, forward, postprocess
per text), which dominates whenever the model is fast. Here the same model and saved tokenizer
run as a plain batched forward:

* texts are read lazily and taken in windows of `window_size` texts;
* each window is tokenized in one fast-tokenizer call (truncated to the model's context as the
  pipeline does, each text first cut to a prefix with the same ids, `context.py`), sorted by token length, cut into batches of `batch_size` similar lengths (little
  padding), run under `torch.inference_mode`, and put back in input order;
* scores use the pipeline's `function_to_apply` rule (softmax, or sigmoid for multi-label or one
  label, none for regression), so results equal `pipeline(..., top_k=None)`'s, except that the
  config's `temperature` and `decision_threshold` apply (`hf_spam.inference.decision`);
* predictions are yielded as each window completes, so a writer can stream them to disk.

An empty text runs alone as an input of no tokens, as it does in the pipeline (hf_spam's model
reads it as the end-of-text token).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ..errors import DataError, UsageError
from .context import context_prefixes
from .decision import OperatingPoint
from .load import PROGRESS_THRESHOLD, Prediction, check_batch_size, label_names

__all__ = [
    "DEFAULT_BULK_BATCH_SIZE",
    "DEFAULT_WINDOW_SIZE",
    "SCORE_FUNCTIONS",
    "check_window_size",
    "classify_bulk",
    "length_sorted_batches",
    "score_function",
]

DEFAULT_WINDOW_SIZE = 8192
#: Texts per forward pass on the bulk path: length-sorted batches waste little on padding, so a
#: larger batch than the pipeline's amortises Python per batch.
DEFAULT_BULK_BATCH_SIZE = 64
#: What turns a text's logits into its scores, as `pipeline(function_to_apply=...)` names them.
SCORE_FUNCTIONS = ("softmax", "sigmoid", "none")


def check_window_size(window_size: Any) -> int:
    if isinstance(window_size, bool) or not isinstance(window_size, int) or window_size < 1:
        raise UsageError(f"--window_size must be a positive integer, got {window_size!r}")
    return window_size


# --------------------------------------------------------------------------------------------
# The batched forward
# --------------------------------------------------------------------------------------------


def score_function(config: Any) -> str:
    """`sigmoid`, `softmax` or `none`: the rule `TextClassificationPipeline.postprocess` applies
    when no `function_to_apply` is given, in the same order."""
    if config.problem_type == "regression":
        return "none"
    if config.problem_type == "multi_label_classification" or config.num_labels == 1:
        return "sigmoid"
    if config.problem_type == "single_label_classification" or config.num_labels > 1:
        return "softmax"
    return str(getattr(config, "function_to_apply", "none")).lower()


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices of `lengths` in batches of similar length (shortest first); empty inputs (length
    0) form batches of their own, since a row of no tokens cannot be padded into a batch."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    empty = [i for i in order if lengths[i] == 0]
    rest = order[len(empty) :]
    return [
        group[start : start + batch_size]
        for group in (empty, rest)
        for start in range(0, len(group), batch_size)
    ]


def _pad(rows: list[list[int]], pad_id: int, side: str) -> tuple[Any, Any]:
    """input_ids and attention_mask of `rows`, padded to the longest on the tokenizer's side."""
    import torch

    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if not row:
            continue
        span = slice(width - len(row), width) if side == "left" else slice(0, len(row))
        ids[i, span] = torch.tensor(row, dtype=torch.long)
        mask[i, span] = 1
    return ids, mask


def _window_scores(
    model: Any,
    tokenizer: Any,
    texts: list[str],
    batch_size: int,
    bar,
    function: str,
    point: OperatingPoint,
) -> Any:
    """Every class's score for `texts`, in their order, as a (len(texts), num_labels) tensor."""
    import torch

    cut = context_prefixes(tokenizer, texts)  # the same ids, whatever the texts' lengths
    encoded = tokenizer(cut, truncation=True, return_attention_mask=False, verbose=False)
    rows: list[list[int]] = encoded["input_ids"]
    pad_id = tokenizer.pad_token_id
    if pad_id is None:  # the mask hides padding; any id will do
        pad_id = model.config.pad_token_id or model.config.eos_token_id or 0
    scores = torch.empty(len(texts), model.config.num_labels)
    for batch in length_sorted_batches([len(row) for row in rows], batch_size):
        ids, mask = _pad([rows[i] for i in batch], pad_id, tokenizer.padding_side)
        logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits
        logits = logits.float().cpu()
        if function == "softmax":
            logits = point.probabilities(logits)
        elif function == "sigmoid":
            logits = point.sigmoid(logits)
        scores[torch.tensor(batch)] = logits
        bar.update(len(batch))
    return scores


def _windows(texts: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(texts)
    while window := list(itertools.islice(iterator, size)):
        yield window


def _check_window(window: list[Any], start: int) -> None:
    for number, text in enumerate(window, start=start + 1):
        if not isinstance(text, str):
            raise DataError(f"text {number}: expected a string, got {type(text).__name__}")


def classify_bulk(
    model: Any,
    tokenizer: Any,
    texts: Iterable[str],
    *,
    batch_size: int = DEFAULT_BULK_BATCH_SIZE,
    window_size: int = DEFAULT_WINDOW_SIZE,
    progress: bool | None = None,
    point: OperatingPoint | None = None,
    function_to_apply: str | None = None,
) -> Iterator[Prediction]:
    """Predictions for `texts` (any iterable, read lazily), in input order, window by window.

    `model` and `tokenizer` are a loaded classifier's (`load_classifier(...).model` and
    `.tokenizer`). The progress bar shows when the first window holds more than
    `PROGRESS_THRESHOLD` texts, or as `progress` says; its count follows the forward passes.
    The config's temperature and decision threshold decide the label, or `point`'s when given
    (`OperatingPoint()`: the model's own probabilities and argmax). `function_to_apply`
    ("softmax", "sigmoid" or "none" for the logits) overrides the model's rule
    (`score_function`), as the pipeline's argument of that name does; a threshold applies to
    softmax scores only.
    """
    import torch
    from tqdm.auto import tqdm

    check_batch_size(batch_size)
    check_window_size(window_size)
    labels = label_names(model.config)
    point = OperatingPoint.from_config(model.config) if point is None else point
    if function_to_apply is not None and function_to_apply not in SCORE_FUNCTIONS:
        choices = ", ".join(SCORE_FUNCTIONS)
        raise UsageError(f"function_to_apply {function_to_apply!r}: choose from {choices}")
    function = function_to_apply or score_function(model.config)
    chooser = point if function == "softmax" else OperatingPoint()  # a threshold of probabilities
    if model.training:  # eval() walks every module: a cost per call when called per request
        model.eval()
    bar = None
    done = 0
    try:
        for window in _windows(texts, window_size):
            _check_window(window, done)
            if bar is None:
                show = len(window) > PROGRESS_THRESHOLD if progress is None else progress
                bar = tqdm(desc="Classifying", unit="text", disable=not show)
            with torch.inference_mode():
                scores = _window_scores(model, tokenizer, window, batch_size, bar, function, point)
            best, best_scores = chooser.choose_rows(scores)
            for text, row, index, score in zip(
                window, scores.tolist(), best.tolist(), best_scores.tolist(), strict=True
            ):
                yield Prediction(
                    text=text,
                    label=labels[index],
                    score=score,
                    scores=dict(zip(labels, row, strict=True)),
                )
            done += len(window)
    finally:
        if bar is not None:
            bar.close()
