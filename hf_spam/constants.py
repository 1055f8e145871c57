"""Names shared across the package: splits, file names, metric-key conventions.

Only plain values live here, so every module may import it without pulling in anything else.
"""

from __future__ import annotations

import numbers
from typing import Any

#: The splits of a prepared data set, in the order the book makes them.
SPLITS = ("train", "validation", "test")

#: Files of a saved model folder (transformers' names).
CONFIG_NAME = "config.json"
SAFETENSORS_NAME = "model.safetensors"
SAFETENSORS_INDEX_NAME = "model.safetensors.index.json"
WEIGHTS_FILES = (SAFETENSORS_NAME, SAFETENSORS_INDEX_NAME)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
#: GPT-2's BPE as two files (transformers' names for OpenAI's encoder.json and vocab.bpe).
BPE_FILES = ("vocab.json", "merges.txt")

#: What `hf-spam evaluate` writes (and a push reads into the model card).
EVAL_REPORT_FILE = "eval_report.json"

#: A few test-split texts per class, saved beside a trained model for demos and Spaces.
EXAMPLES_FILE = "examples.json"

#: Trainer's timing metrics (`<prefix>_runtime`, ...): not scores of the model.
TIMING_SUFFIXES = ("_runtime", "_samples_per_second", "_steps_per_second")

#: The SMS Spam Collection on the Hub (the model card links it).
SMS_SPAM_HUB_ID = "ucirvine/sms_spam"


def is_number(value: Any) -> bool:
    """Python and numpy numbers; not bools, which print as words."""
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def split_metrics(metrics: dict[str, Any], split: str) -> dict[str, Any]:
    """The `<split>_*` scores of a flat metrics dict (Trainer's keys), timings left out."""
    prefix = f"{split}_"
    return {
        key: value
        for key, value in metrics.items()
        if key.startswith(prefix) and not key.endswith(TIMING_SUFFIXES)
    }


__all__ = [
    "BPE_FILES",
    "CONFIG_NAME",
    "EVAL_REPORT_FILE",
    "EXAMPLES_FILE",
    "SAFETENSORS_INDEX_NAME",
    "SAFETENSORS_NAME",
    "SMS_SPAM_HUB_ID",
    "SPLITS",
    "TIMING_SUFFIXES",
    "TOKENIZER_FILES",
    "WEIGHTS_FILES",
    "is_number",
    "split_metrics",
]
