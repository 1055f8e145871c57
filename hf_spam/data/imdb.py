"""The book's IMDb workload (ch06/03_bonus_imdb-classification) as a source (`--dataset
imdb`): Stanford's 50,000 labelled movie reviews, read in the order the book's
`download_prepare_dataset.py` reads them, and the book's split of them.

The archive is downloaded once into the datasets cache and checked against its sha256; the
reviews are read straight from the tarball (no extraction) into a cached Arrow dataset.
`book`: shuffled twice with `sample(frac=1, random_state=123)`, then cut 35,000/5,000/10,000
(70/10/20 of 50,000); not balanced further.
"""

from __future__ import annotations

import dataclasses
import os
import tarfile
from pathlib import Path, PurePosixPath

import numpy as np
from datasets import ClassLabel, DatasetDict, Features, Value
from datasets.exceptions import DatasetGenerationError

from ..constants import SPLITS
from ..errors import DataError
from . import downloads
from .arguments import DataArguments
from .cleaning import LoadedSource
from .formats import Split, generated_dataset
from .partition import cut, pandas_sample

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
IMDB_LABELS = ("neg", "pos")  # neg=0, pos=1, as in the book
#: The book reads the test folder before the train folder, and pos before neg in each.
IMDB_READ_ORDER = (("test", "pos"), ("test", "neg"), ("train", "pos"), ("train", "neg"))


def download_imdb(cache_dir: str | os.PathLike | None = None) -> Path:
    """The verified `aclImdb_v1.tar.gz`, downloaded into the datasets cache the first time."""
    archive = downloads.fetch_url(
        IMDB_URL,
        str(cache_dir) if cache_dir else None,
        "the IMDb reviews",
        "use --dataset stanfordnlp/imdb from the Hub, or convert the reviews to a CSV and pass "
        "--train_file",
    )
    digest = downloads.file_sha256(archive)
    if digest != IMDB_SHA256:
        archive.unlink(missing_ok=True)
        raise DataError(
            f"{archive} (from {IMDB_URL}): sha256 checksum mismatch, expected {IMDB_SHA256}, "
            f"got {digest}; deleted the download, run again to retry"
        )
    return archive


def read_imdb_archive(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Texts and labels ('pos'/'neg') in the book's order: folders as `IMDB_READ_ORDER`, the
    files of each folder sorted by name (the book's `sorted(os.listdir(path))`)."""
    folders: dict[tuple[str, str], dict[str, str]] = {key: {} for key in IMDB_READ_ORDER}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                parts = PurePosixPath(member.name).parts
                if not member.isfile() or len(parts) != 4 or tuple(parts[1:3]) not in folders:
                    continue  # train/unsup, the vocabulary, the README
                handle = archive.extractfile(member)
                try:
                    text = handle.read().decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise DataError(f"{path}: {member.name} is not UTF-8 text ({exc})") from None
                folders[tuple(parts[1:3])][parts[3]] = text
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"{path}: expected the aclImdb_v1.tar.gz archive ({exc})") from None
    empty = [f"aclImdb/{subset}/{label}" for (subset, label), files in folders.items() if not files]
    if empty:
        raise DataError(f"{path}: no reviews in {', '.join(empty)}")
    texts, labels = [], []
    for (_, label), files in folders.items():
        for name in sorted(files):
            texts.append(files[name])
            labels.append(label)
    return texts, labels


def _imdb_rows(path: str, sha256: str):
    """Generator for `Dataset.from_generator`; `sha256` only keys the Arrow cache to the content."""
    for text, label in zip(*read_imdb_archive(path), strict=True):
        yield {"text": text, "label": IMDB_LABELS.index(label)}


def load_imdb(cache_dir: str | None = None) -> Split:
    """All 50,000 labelled reviews as one split, in the order the book reads them."""
    archive = download_imdb(cache_dir)
    features = Features({"text": Value("string"), "label": ClassLabel(names=list(IMDB_LABELS))})
    try:
        dataset = generated_dataset(
            _imdb_rows, features, {"path": str(archive), "sha256": IMDB_SHA256}, cache_dir
        )
    except DatasetGenerationError as exc:
        if isinstance(exc.__cause__, DataError):
            raise exc.__cause__ from None
        raise
    return Split(dataset, f"{IMDB_URL} ({archive})", "row", "text", "label")


def load_imdb_source(args: DataArguments) -> tuple[dict[str, Split], list[str]]:
    """All the reviews as one split, `train`, and where they came from."""
    split = load_imdb(args.data_cache_dir)
    return {"train": split}, [f"IMDb reviews from {split.origin}"]


def book_split(loaded: LoadedSource, args: DataArguments) -> LoadedSource:
    """`--split book`: the book's two shuffles of every review, cut 70/10/20."""
    pool = loaded.dataset["train"]
    order = np.arange(len(pool))
    for _ in range(2):  # the book shuffles once when reading and once when partitioning
        order = order[pandas_sample(len(order), len(order), args.split_seed)]
    return dataclasses.replace(
        loaded, dataset=DatasetDict(cut(pool, order, args, SPLITS, loaded.origin))
    )


__all__ = [
    "IMDB_LABELS",
    "IMDB_SHA256",
    "IMDB_URL",
    "book_split",
    "download_imdb",
    "load_imdb",
    "load_imdb_source",
    "read_imdb_archive",
]
