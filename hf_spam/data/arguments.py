"""`DataArguments`: where the labelled texts come from and how to prepare them.

Every flag that needs parsing (`--labels`, `--split_fractions`, `--context_length`) is parsed
once, in `__post_init__`, into typed attributes the other modules read (`label_names`,
`fractions`, `pad_to`); a value that cannot work raises `UsageError` naming the flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from ..constants import SPLITS
from ..errors import UsageError

PADDING_STRATEGIES = ("dynamic", "longest_train")
EMPTY_TEXT_POLICIES = ("drop", "error")
SPLIT_METHODS = ("book", "bonus", "clean")
#: The book's `--context_length` words (additional_experiments.py); an integer is also accepted.
CONTEXT_LENGTHS = ("longest_training_example", "model_context_length")
BOOK_FRACTIONS = {"train": Fraction(7, 10), "validation": Fraction(1, 10), "test": Fraction(2, 10)}


@dataclass
class DataArguments:
    """Where the labelled texts come from and how to prepare them.

    Parsed by `HfArgumentParser` (its own section of --help). Field names avoid those of
    `TrainingArguments` so both parse side by side (hence `split_seed`, not `seed`, and
    `data_cache_dir`).
    """

    _argument_group_name = "data"

    dataset: str = field(
        default="sms_spam",
        metadata={
            "help": "'sms_spam' (the UCI SMS Spam Collection, shipped with the package), 'imdb' "
            "(download Stanford's IMDb reviews, the book's ch06 bonus), a path to a "
            "SMSSpamCollection file, a CSV/TSV/JSONL/Parquet file, or a Hub dataset id (e.g. "
            "'ucirvine/sms_spam')."
        },
    )
    dataset_config_name: str | None = field(
        default=None, metadata={"help": "Configuration name of a Hub dataset."}
    )
    train_file: str | None = field(
        default=None,
        metadata={"help": "Training file (CSV/TSV/JSONL/Parquet); replaces --dataset."},
    )
    validation_file: str | None = field(
        default=None, metadata={"help": "Validation file, kept as is instead of split off."}
    )
    test_file: str | None = field(
        default=None, metadata={"help": "Test file, kept as is instead of split off."}
    )
    text_column: str = field(default="text", metadata={"help": "Column holding the texts."})
    label_column: str = field(default="label", metadata={"help": "Column holding the labels."})
    labels: str | None = field(
        default=None,
        metadata={
            "help": "Comma-separated class names in id order (e.g. 'ham,spam'). Fixes the label set: "
            "any other label is an error. Default: the source's names, else the sorted labels found."
        },
    )
    split: str | None = field(
        default=None,
        metadata={
            "help": "'book': the book's rows and order (ch06 gpt_class_finetune.py for the SMS Spam "
            "Collection, download_prepare_dataset.py for imdb); 'bonus': the SMS split of the "
            "bonus experiments (ch06/02 additional_experiments.py: the book's, shuffled once "
            "more before cutting); 'clean': the faithful parse, "
            "balanced and split with --split_seed. Default: book for the SMS Spam Collection and "
            "imdb when the other flags allow it, else clean.",
            "choices": list(SPLIT_METHODS),
        },
    )
    balance: bool = field(
        default=True,
        metadata={
            "help": "Undersample every class to the smallest one before splitting (the book)."
        },
    )
    split_fractions: str = field(
        default="0.7,0.1,0.2",
        metadata={
            "help": "train,validation,test fractions summing to 1. Splits given as files are kept "
            "and the remaining fractions are renormalized."
        },
    )
    dedupe: bool = field(
        default=False,
        metadata={
            "help": "Drop exact duplicate texts before splitting (keeping the first), and texts that "
            "occur in a given validation/test file."
        },
    )
    split_seed: int = field(default=123, metadata={"help": "Seed for balancing and splitting."})
    context_length: str | None = field(
        default=None,
        metadata={
            "help": "Pad every text to one length, as the book does (longer texts are truncated): "
            "'longest_training_example', 'model_context_length' or a number of tokens. Default: "
            "no fixed length, each batch is padded to its longest text."
        },
    )
    padding: str = field(
        default="dynamic",
        metadata={
            "help": "'dynamic': pad each batch to its longest example in the data collator; "
            "'longest_train': same as --context_length longest_training_example.",
            "choices": list(PADDING_STRATEGIES),
        },
    )
    max_length: int | None = field(
        default=None,
        metadata={
            "help": "Truncate texts to this many tokens (never more than the context length)."
        },
    )
    max_train_samples: int | None = field(
        default=None,
        metadata={"help": "Keep only the first N training examples (after splitting)."},
    )
    max_eval_samples: int | None = field(
        default=None,
        metadata={
            "help": "Keep only the first N examples of validation and of test (after splitting)."
        },
    )
    empty_text: str = field(
        default="drop",
        metadata={
            "help": "Missing or whitespace-only texts: 'drop' them (counted in the report) or 'error'.",
            "choices": list(EMPTY_TEXT_POLICIES),
        },
    )
    data_cache_dir: str | None = field(
        default=None,
        metadata={
            "help": "Cache directory for downloads and Arrow files (default: HF_DATASETS_CACHE)."
        },
    )

    def __post_init__(self) -> None:
        _check_choice("--padding", self.padding, PADDING_STRATEGIES)
        _check_choice("--empty_text", self.empty_text, EMPTY_TEXT_POLICIES)
        if self.split is not None:
            _check_choice("--split", self.split, SPLIT_METHODS)
        for flag in ("max_length", "max_train_samples", "max_eval_samples"):
            value = getattr(self, flag)
            if value is not None and value < 1:
                raise UsageError(f"--{flag} {value}: expected at least 1")
        if self.text_column == self.label_column:
            raise UsageError(
                f"--text_column and --label_column are both {self.text_column!r}; "
                "expected two different columns"
            )
        #: train/validation/test -> exact fraction (never float rounding: 0.7 * 1494 = 1045.8).
        self.fractions: dict[str, Fraction] = parse_fractions(self.split_fractions)
        #: Fixed class names in id order, or None (take the source's).
        self.label_names: tuple[str, ...] | None = parse_labels(self.labels)
        #: None (pad each batch), "longest_training_example", "model_context_length" or a length.
        self.pad_to: str | int | None = parse_context_length(self.context_length, self.padding)

    @property
    def seed(self) -> int:
        """Alias of `split_seed` (a `seed` field would clash with `TrainingArguments.seed`)."""
        return self.split_seed


def _check_choice(flag: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UsageError(f"{flag} {value}: expected one of {', '.join(choices)}")


def parse_fractions(text: str) -> dict[str, Fraction]:
    """'0.7,0.1,0.2' -> exact fractions per split."""
    try:
        values = [Fraction(part.strip()) for part in text.split(",")]
    except (ValueError, ZeroDivisionError):
        values = []
    if len(values) != 3 or any(v <= 0 for v in values) or sum(values) != 1:
        raise UsageError(
            f"--split_fractions {text}: expected three positive numbers summing to 1 "
            "(train,validation,test)"
        )
    return dict(zip(SPLITS, values, strict=True))


def parse_labels(text: str | None) -> tuple[str, ...] | None:
    """'ham,spam' -> ('ham', 'spam')."""
    if text is None:
        return None
    names = tuple(name.strip() for name in text.split(","))
    if len(names) < 2 or len(set(names)) != len(names) or not all(names):
        raise UsageError(f"--labels {text}: expected two or more distinct class names")
    return names


def parse_context_length(text: str | None, padding: str = "dynamic") -> str | int | None:
    """The book's `--context_length`, with `--padding longest_train` as its older spelling."""
    if text is None:
        return "longest_training_example" if padding == "longest_train" else None
    if text in CONTEXT_LENGTHS:
        value: str | int = text
    elif text.strip().isdigit() and int(text) > 0:
        value = int(text)
    else:
        raise UsageError(
            f"--context_length {text}: expected {', '.join(CONTEXT_LENGTHS)} or a positive number"
        )
    if padding == "longest_train" and value != "longest_training_example":
        raise UsageError(
            f"--padding longest_train conflicts with --context_length {text}; give only one"
        )
    return value


__all__ = [
    "BOOK_FRACTIONS",
    "CONTEXT_LENGTHS",
    "EMPTY_TEXT_POLICIES",
    "PADDING_STRATEGIES",
    "SPLIT_METHODS",
    "DataArguments",
    "parse_context_length",
    "parse_fractions",
    "parse_labels",
]
