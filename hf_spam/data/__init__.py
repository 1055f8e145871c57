"""Data pipeline: labelled texts -> split, GPT-2-tokenized `datasets.DatasetDict`.

This reproduces the dataset preparation of chapter 6 of *Build a Large Language Model (From
Scratch)* (the book's split and padding) as a cached `datasets` pipeline, and accepts any
labelled text besides the SMS Spam Collection: the book's IMDb reviews, CSV/TSV/JSON
lines/Parquet files or a Hub dataset. One module per job:

- `arguments`: `DataArguments` (flags parsed once into typed attributes)
- `sources`: the table of sources (`SOURCES`); one module per source's own loader and book
  splits: `sms` (the SMS Spam Collection), `imdb`, `formats` (local files), `hub` (Hub datasets)
- `bundled/`: the data shipped with the package (the SMS Spam Collection, GPT-2's BPE files);
  `downloads`: fetching the rest, one line when offline
- `cleaning`: labels and empty texts, `LoadedSource` (the record of a source's texts)
- `splits`: the book's split or the clean one, `load_splits` (text + label, not tokenized);
  `partition`: the sampling and cutting they share
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
from .bundled import BUNDLED_DIR, SMS_SPAM_FILENAME, SMS_SPAM_SHA256, bundled_file
from .cleaning import LoadedSource
from .collation import ClassificationCollator, get_data_collator
from .downloads import FetchError
from .formats import SMS_LABELS, TABULAR_FORMATS, read_sms_spam_file
from .hub import HUB_SPLIT_NAMES
from .imdb import IMDB_LABELS, IMDB_SHA256, IMDB_URL, download_imdb, read_imdb_archive
from .preparation import PreparedData, check_save_target, prepare_data, save_dataset_to_disk
from .report import DataReport, format_report
from .sources import SOURCES, Source, find_source, load_raw_dataset
from .splits import load_splits, resolve_split
from .tokenization import (
    GPT2_ENCODING,
    GPT2_EOS_TOKEN,
    GPT2_PAD_TOKEN_ID,
    check_tokenizer_fits,
    get_tokenizer,
    gpt2_encoding,
    load_tokenizer,
)

__all__ = [
    "BUNDLED_DIR",
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
    "SOURCES",
    "SPLIT_METHODS",
    "TABULAR_FORMATS",
    "ClassificationCollator",
    "DataArguments",
    "DataError",
    "DataReport",
    "FetchError",
    "LoadedSource",
    "PreparedData",
    "Source",
    "UsageError",
    "bundled_file",
    "check_save_target",
    "check_tokenizer_fits",
    "download_imdb",
    "find_source",
    "format_report",
    "get_data_collator",
    "get_tokenizer",
    "gpt2_encoding",
    "load_raw_dataset",
    "load_tokenizer",
    "load_splits",
    "prepare_data",
    "read_imdb_archive",
    "read_sms_spam_file",
    "resolve_split",
    "save_dataset_to_disk",
]
