"""The sources of labelled texts, as one table: how a --dataset value names each, how it loads,
and which of the book's splits it defines.

    SOURCES = (the SMS Spam Collection, IMDb, local files, a Hub dataset)

A --dataset value that is one of a source's `keywords` names it, whatever files exist;
otherwise the first source that `recognises` the arguments is the one, and the last (a Hub
dataset) takes any other name.
Cleaning (`cleaning.py`) and splitting (`splits.py`) read the table and know no source by
name. Adding a source is one `Source` entry here and its loader (a module of its own, like
`imdb.py`): `load` returns the splits it gives (`train`, and `validation`/`test` when it has
them) and one phrase per split saying where it came from.

--validation_file/--test_file replace the source's split of that name, for every source;
--train_file replaces --dataset.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from datasets import DatasetDict

from ..constants import SMS_SPAM_HUB_ID
from ..errors import DataError
from . import imdb, sms
from .arguments import DataArguments
from .cleaning import LoadedSource, clean_splits
from .formats import Split, load_file, looks_like_path
from .hub import load_hub_source

#: A book split: the cleaned source in, the same record with its train/validation/test out.
SplitProcedure = Callable[[LoadedSource, DataArguments], LoadedSource]
Loader = Callable[[DataArguments], tuple[dict[str, Split], list[str]]]


@dataclass(frozen=True)
class Source:
    """One kind of source.

    `keywords` are the --dataset values that name it; `recognises` takes the arguments that
    name it otherwise (a path, --train_file). `splits` are the book's split procedures it
    defines, by `--split` name, the first its default; `clean` (`splits.py`) applies to every
    source besides. `book_balances`: its book splits balance the classes themselves, so
    `--no_balance` conflicts with them.
    """

    name: str  # as messages say it: "--split bonus: defined for <name> only"
    load: Loader
    keywords: tuple[str, ...] = ()
    recognises: Callable[[DataArguments], bool] = lambda args: False
    splits: Mapping[str, SplitProcedure] = field(default_factory=dict)
    book_balances: bool = False


def is_local_file(args: DataArguments) -> bool:
    return bool(args.train_file) or looks_like_path(args.dataset)


def load_local_file(args: DataArguments) -> tuple[dict[str, Split], list[str]]:
    """A CSV/TSV/JSON lines/Parquet file (or one in the SMS format) as the `train` split."""
    path = Path(args.train_file or args.dataset).expanduser()
    return {"train": load_file(path, args)}, [f"train file {path}"]


SOURCES: tuple[Source, ...] = (
    Source(
        "the SMS Spam Collection",
        sms.load_sms_spam,
        keywords=(sms.SMS_SPAM_NAME, SMS_SPAM_HUB_ID),
        recognises=sms.is_sms_spam_path,
        splits={"book": sms.book_split, "bonus": sms.bonus_split},
        book_balances=True,
    ),
    Source("imdb", imdb.load_imdb_source, keywords=("imdb",), splits={"book": imdb.book_split}),
    Source("local files", load_local_file, recognises=is_local_file),
    Source("a Hub dataset", load_hub_source, recognises=lambda args: True),
)


def find_source(args: DataArguments) -> Source:
    """The entry of `SOURCES` that `args` name (--train_file, else --dataset)."""
    if not args.train_file:
        for source in SOURCES:
            if args.dataset in source.keywords:
                return source
    return next(source for source in SOURCES if source.recognises(args))


def sources_defining(method: str) -> str:
    """The names of the sources that define the split `method`, as a message lists them."""
    names = [source.name for source in SOURCES if method in source.splits]
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 2 else names)


def load_source(args: DataArguments) -> tuple[dict[str, Split], str]:
    """Every split the source provides, and a one-line description of where they came from."""
    if args.train_file and args.dataset != DataArguments.dataset:
        raise DataError(f"give either --dataset ({args.dataset!r}) or --train_file, not both")
    splits, described = find_source(args).load(args)
    given = {"validation": args.validation_file, "test": args.test_file}
    for split, path in given.items():
        if path:  # a given file replaces the source's split
            splits[split] = load_file(Path(path).expanduser(), args)
            described.append(f"{split} file {Path(path).expanduser()}")
    return splits, ", ".join(described)


def clean_source(args: DataArguments) -> LoadedSource:
    """Load the source, check every label and drop (or refuse) empty texts."""
    return clean_splits(*load_source(args), args)


def load_raw_dataset(args: DataArguments) -> tuple[DatasetDict, dict[str, int]]:
    """Load and clean the labelled texts, before balancing and splitting.

    Returns the splits the source provides (always `train`, plus `validation`/`test` when given)
    with columns `text` and `label` (a `ClassLabel`), and `label2id`.
    """
    loaded = clean_source(args)
    return loaded.dataset, loaded.label2id


__all__ = [
    "SOURCES",
    "Source",
    "SplitProcedure",
    "clean_source",
    "find_source",
    "load_raw_dataset",
    "load_source",
    "sources_defining",
]
