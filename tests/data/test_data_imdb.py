"""Tests of the IMDb source (`--dataset imdb`), offline on a small archive with aclImdb's layout,
against the book's `download_prepare_dataset.py` procedure written out with pandas."""

from __future__ import annotations

import hashlib
import os
import re
import tarfile
from pathlib import Path

import pandas as pd
import pytest
from helpers import three_class_frame, write_frame

from hf_spam.data import (
    DataArguments,
    DataError,
    FetchError,
    UsageError,
    downloads,
    imdb,
    load_splits,
)


def build_archive(root: Path, per_folder: int = 6) -> Path:
    """aclImdb/{train,test}/{pos,neg}/<id>_<stars>.txt plus the files the book ignores."""
    base = root / "aclImdb"
    for subset in ("train", "test"):
        for label in ("pos", "neg"):
            folder = base / subset / label
            folder.mkdir(parents=True)
            for i in range(per_folder):
                # names whose string order differs from numeric order (10 before 2)
                number = (i * 7) % (per_folder + 5)
                text = f'{subset} {label} review {number}: <br />great, "quoted"\nline é'
                (folder / f"{number}_{i + 1}.txt").write_text(text, encoding="utf-8")
        (base / subset / "urls_pos.txt").write_text("http://example.com\n")
    (base / "train" / "unsup").mkdir()
    (base / "train" / "unsup" / "0_0.txt").write_text("unlabelled")
    (base / "imdb.vocab").write_text("the\n")
    archive = root / "aclImdb_v1.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(base, arcname="aclImdb")
    return archive


def book_split_with_pandas(basepath: Path, fractions=(0.7, 0.1)) -> dict[str, pd.DataFrame]:
    """The book's steps: read test then train, pos then neg, files sorted; shuffle twice."""
    frames = []
    for subset in ("test", "train"):
        for label in ("pos", "neg"):
            path = os.path.join(basepath, subset, label)
            for file in sorted(os.listdir(path)):
                with open(os.path.join(path, file), encoding="utf-8") as infile:
                    frames.append(
                        pd.DataFrame(
                            {"text": [infile.read()], "label": [{"pos": 1, "neg": 0}[label]]}
                        )
                    )
    df = pd.concat(frames, ignore_index=True)
    df = df.sample(frac=1, random_state=123).reset_index(drop=True)
    df = df.sample(frac=1, random_state=123).reset_index(drop=True)
    train_end = int(len(df) * fractions[0])  # 35,000 of 50,000
    val_end = train_end + int(len(df) * fractions[1])  # 5,000 of 50,000
    return {"train": df[:train_end], "validation": df[train_end:val_end], "test": df[val_end:]}


@pytest.fixture
def fetched() -> list[str]:
    return []


@pytest.fixture
def archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fetched: list[str]) -> Path:
    """The test archive stands in for the download: only the URL's fetch and checksum change."""
    path = build_archive(tmp_path / "src")
    monkeypatch.setattr(downloads, "fetch_url", lambda url, *_: fetched.append(url) or path)
    monkeypatch.setattr(imdb, "IMDB_SHA256", hashlib.sha256(path.read_bytes()).hexdigest())
    return path


def test_imdb_split_is_the_books(archive: Path, fetched: list[str], tmp_path: Path) -> None:
    dataset, info = load_splits(DataArguments(dataset="imdb", data_cache_dir=str(tmp_path / "c")))
    assert fetched == [imdb.IMDB_URL]
    assert info.split == "book"
    assert info.label2id == {"neg": 0, "pos": 1}
    assert info.rows_read == {"train": 24}
    book = book_split_with_pandas(tmp_path / "src" / "aclImdb")
    assert [len(frame) for frame in book.values()] == [16, 2, 6]
    for split, frame in book.items():
        assert dataset[split]["text"] == list(frame["text"]), split
        assert dataset[split]["label"] == list(frame["label"]), split


def test_imdb_is_not_balanced_further(archive: Path, tmp_path: Path) -> None:
    args = DataArguments(dataset="imdb", balance=False, data_cache_dir=str(tmp_path / "c"))
    dataset, info = load_splits(args)
    assert info.split == "book"  # the book does not balance IMDb: --no_balance changes nothing
    assert sum(ds.num_rows for ds in dataset.values()) == 24
    with pytest.raises(UsageError, match="--split book conflicts with --dedupe"):
        load_splits(DataArguments(dataset="imdb", split="book", dedupe=True))


def test_imdb_checksum_mismatch(archive: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(imdb, "IMDB_SHA256", "0" * 64)
    with pytest.raises(DataError, match=r"sha256 checksum mismatch, expected 0{64}.*deleted"):
        load_splits(DataArguments(dataset="imdb", data_cache_dir=str(tmp_path / "c")))
    assert not archive.exists()


def test_imdb_not_an_archive(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "aclImdb_v1.tar.gz"
    path.write_bytes(b"<html>maintenance</html>")
    monkeypatch.setattr(downloads, "fetch_url", lambda url, *_: path)
    monkeypatch.setattr(imdb, "IMDB_SHA256", hashlib.sha256(path.read_bytes()).hexdigest())
    with pytest.raises(DataError, match=r"aclImdb_v1\.tar\.gz: expected the aclImdb_v1\.tar\.gz"):
        load_splits(DataArguments(dataset="imdb", data_cache_dir=str(tmp_path / "c")))


def test_imdb_with_a_given_test_file(archive: Path, tmp_path: Path) -> None:
    """--test_file replaces the test split of every source, IMDb's included (then split clean)."""
    frame = three_class_frame(2, label_values=("neg", "pos", "neg"))
    test = write_frame(frame, tmp_path / "test.csv")
    args = DataArguments(dataset="imdb", test_file=str(test), data_cache_dir=str(tmp_path / "c"))
    dataset, info = load_splits(args)
    assert info.split == "clean"
    assert dataset["test"]["text"] == list(frame["text"])
    assert info.source.endswith(f", test file {test}")
    assert dataset["train"].num_rows + dataset["validation"].num_rows == 24


def test_imdb_offline_is_one_line(tmp_path: Path) -> None:
    """No network (HF_DATASETS_OFFLINE here) and no cached archive: what could not be fetched,
    from where, and what to use instead."""
    message = (
        f"could not fetch the IMDb reviews from {imdb.IMDB_URL}: the network cannot be reached "
        "(offline), and it is not in the datasets cache; use --dataset stanfordnlp/imdb from the "
        "Hub, or convert the reviews to a CSV and pass --train_file"
    )
    with pytest.raises(FetchError, match=f"^{re.escape(message)}$"):
        load_splits(DataArguments(dataset="imdb", data_cache_dir=str(tmp_path / "c")))
