"""Data pipeline: labelled texts -> split, GPT-2-tokenized `datasets.DatasetDict`.

This reproduces the dataset preparation of chapter 6 of *Build a Large Language Model (From
Scratch)* (the book's split and padding) as a cached `datasets` pipeline, and accepts any
labelled text besides the SMS Spam Collection: the book's IMDb reviews, CSV/TSV/JSON
lines/Parquet files or a Hub dataset. One module per job:

- `arguments`: `DataArguments` (flags parsed once into typed attributes)
- `sources`, `imdb`: reading each kind of source; `cleaning`: labels and empty texts
- `splits`: the book's split or the clean one, `load_splits` (text + label, not tokenized)
- `tokenization`: the GPT-2 tokenizer saved with the model, batched `Dataset.map`
- `collation`: `DataCollatorWithPadding`; `report`: the summary table
- `preparation`: `prepare_data` (all of the above) and saving to disk
"""

from __future__ import annotations

from ..constants import SMS_SPAM_HUB_ID
from ..errors import DataError, UsageError
from .arguments import (
    CONTEXT_LENGTHS,
    EMPTY_TEXT_POLICIES,
    PADDING_STRATEGIES,
    SPLIT_METHODS,
    DataArguments,
)
from .cleaning import load_raw_dataset
from .collation import ClassificationCollator, get_data_collator
from .imdb import IMDB_LABELS, IMDB_SHA256, IMDB_URL, download_imdb, read_imdb_archive
from .preparation import PreparedData, check_save_target, prepare_data, save_dataset_to_disk
from .report import DataReport, format_report
from .sources import (
    HUB_SPLIT_NAMES,
    SMS_LABELS,
    SMS_SPAM_FILENAME,
    SMS_SPAM_SHA256,
    SMS_SPAM_URL,
    TABULAR_FORMATS,
    download_sms_spam,
    read_sms_spam_file,
)
from .splits import SplitInfo, load_splits, resolve_split
from .tokenization import (
    GPT2_ENCODING,
    GPT2_EOS_TOKEN,
    GPT2_PAD_TOKEN_ID,
    check_tokenizer_fits,
    get_tokenizer,
    load_tokenizer,
)

__all__ = [
    "CONTEXT_LENGTHS",
    "EMPTY_TEXT_POLICIES",
    "GPT2_ENCODING",
    "GPT2_EOS_TOKEN",
    "GPT2_PAD_TOKEN_ID",
    "HUB_SPLIT_NAMES",
    "IMDB_LABELS",
    "IMDB_SHA256",
    "IMDB_URL",
    "PADDING_STRATEGIES",
    "SMS_LABELS",
    "SMS_SPAM_FILENAME",
    "SMS_SPAM_HUB_ID",
    "SMS_SPAM_SHA256",
    "SMS_SPAM_URL",
    "SPLIT_METHODS",
    "TABULAR_FORMATS",
    "ClassificationCollator",
    "DataArguments",
    "DataError",
    "DataReport",
    "PreparedData",
    "SplitInfo",
    "UsageError",
    "check_save_target",
    "check_tokenizer_fits",
    "download_imdb",
    "download_sms_spam",
    "format_report",
    "get_data_collator",
    "get_tokenizer",
    "load_raw_dataset",
    "load_tokenizer",
    "load_splits",
    "prepare_data",
    "read_imdb_archive",
    "read_sms_spam_file",
    "resolve_split",
    "save_dataset_to_disk",
]
