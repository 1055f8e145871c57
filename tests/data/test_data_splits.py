"""Tests of balancing and splitting: the book's split against pandas' own steps, the clean one."""

from __future__ import annotations

import hashlib
import io
import logging
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

import datasets
import pandas as pd
import pytest
from helpers import texts_of, three_class_frame, write_frame, write_sms

from hf_spam.data import (
    SMS_LABELS,
    SMS_SPAM_FILENAME,
    SMS_SPAM_HUB_ID,
    DataArguments,
    DataError,
    LoadedSource,
    Source,
    UsageError,
    load_splits,
    prepare_data,
    resolve_split,
    sources,
)
from hf_spam.data.formats import Split


def test_sms_clean_split_is_balanced_and_reproducible(
    sms_file: Path, sms_rows: list[tuple[str, str]], tmp_path: Path, tiktoken_available: None
) -> None:
    runs = [
        prepare_data(
            DataArguments(
                dataset=str(sms_file),
                split="clean",
                padding="longest_train",
                data_cache_dir=str(tmp_path / f"c{i}"),
            ),
            context_length=1024,
        )
        for i in range(2)
    ]
    prepared = runs[0]
    sizes = {split: ds.num_rows for split, ds in prepared.dataset.items()}
    assert sizes == {"train": 1045, "validation": 149, "test": 300}
    overall = Counter(label for ds in prepared.dataset.values() for label in ds["label"])
    assert overall == {0: 747, 1: 747}
    for split in ("train", "validation", "test"):
        assert prepared.dataset[split].to_dict() == runs[1].dataset[split].to_dict()
    # Pinned so a change of RNG or algorithm shows up (numpy's PCG64 streams are stable).
    digest = hashlib.sha256("\n".join(texts_of(prepared.dataset["train"])).encode()).hexdigest()
    assert digest[:16] == "704127a760f6a988"
    by_text = {}
    for label, text in sms_rows:
        by_text.setdefault(text, set()).add(SMS_LABELS.index(label))
    for ds in prepared.dataset.values():
        for example in ds:
            assert example["label"] in by_text[example["text"]]  # unchanged text, its label
            assert len(example["input_ids"]) == prepared.max_length  # the book's padding
            assert sum(example["attention_mask"]) == example["length"]
            assert example["input_ids"][example["length"] :] == [50256] * (
                prepared.max_length - example["length"]
            )
    assert prepared.max_length == max(prepared.dataset["train"]["length"])
    assert prepared.report.truncated["train"] == 0
    assert prepared.id2label == {0: "ham", 1: "spam"}
    leaked = prepared.report.cross_split_duplicates["test in train"]
    train_texts = set(texts_of(prepared.dataset["train"]))
    assert leaked == sum(text in train_texts for text in texts_of(prepared.dataset["test"])) > 0


def test_sms_dedupe_removes_leakage(
    sms_file: Path, cache_dir: str, tiktoken_available: None
) -> None:
    prepared = prepare_data(
        DataArguments(dataset=str(sms_file), dedupe=True, data_cache_dir=cache_dir)
    )
    assert prepared.report.duplicates_dropped == 5574 - 5171
    assert {split: ds.num_rows for split, ds in prepared.dataset.items()} == {
        "train": 914,
        "validation": 130,
        "test": 262,
    }  # 653 distinct spam texts, balanced: 1306 rows
    assert set(prepared.report.cross_split_duplicates.values()) == {0}
    all_texts = [text for ds in prepared.dataset.values() for text in ds["text"]]
    assert len(all_texts) == len(set(all_texts))


def test_sms_without_balancing(sms_file: Path, cache_dir: str, tiktoken_available: None) -> None:
    args = DataArguments(dataset=str(sms_file), balance=False, data_cache_dir=cache_dir)
    prepared = prepare_data(args)
    assert {split: ds.num_rows for split, ds in prepared.dataset.items()} == {
        "train": 3901,
        "validation": 557,
        "test": 1116,
    }
    counts = prepared.report.class_counts
    assert sum(c["ham"] for c in counts.values()) == 4827
    assert sum(c["spam"] for c in counts.values()) == 747


def test_given_validation_and_test_files_are_kept(
    tmp_path: Path, cache_dir: str, tiktoken_available: None
) -> None:
    frame = three_class_frame(20)
    train = write_frame(frame, tmp_path / "train.csv")
    test_frame = frame.iloc[::4].reset_index(drop=True)  # 15 rows, all also in train
    test = write_frame(test_frame, tmp_path / "test.csv")
    args = DataArguments(train_file=str(train), test_file=str(test), data_cache_dir=cache_dir)
    prepared = prepare_data(args, context_length=32)
    assert texts_of(prepared.dataset["test"]) == list(test_frame["text"])
    # 60 rows split 0.7 : 0.1 of what is left after the given test file.
    assert prepared.dataset["train"].num_rows == 52
    assert prepared.dataset["validation"].num_rows == 8
    assert prepared.report.cross_split_duplicates["test in train"] > 0

    deduped = prepare_data(
        DataArguments(
            train_file=str(train), test_file=str(test), dedupe=True, data_cache_dir=cache_dir
        ),
        context_length=32,
    )
    assert deduped.report.duplicates_dropped == 15
    assert deduped.report.cross_split_duplicates["test in train"] == 0
    assert deduped.dataset["train"].num_rows + deduped.dataset["validation"].num_rows == 45


def test_other_fractions(tmp_path: Path, cache_dir: str, tiktoken_available: None) -> None:
    path = write_frame(three_class_frame(10), tmp_path / "d.parquet")
    args = DataArguments(
        dataset=str(path), split_fractions="0.5, 1/4, 0.25", data_cache_dir=cache_dir
    )
    prepared = prepare_data(args, context_length=32)
    assert [ds.num_rows for ds in prepared.dataset.values()] == [15, 7, 8]


def test_too_few_rows_for_the_split(tmp_path: Path, cache_dir: str) -> None:
    path = write_sms(tmp_path / SMS_SPAM_FILENAME, [("ham", "a"), ("spam", "b"), ("ham", "c")] * 2)
    with pytest.raises(
        DataError,
        match=r"4 rows left after cleaning and balancing are too few for split fractions 0\.7,0\.1,0\.2: 'validation' would be empty",
    ):
        prepare_data(DataArguments(dataset=str(path), data_cache_dir=cache_dir))


def test_balancing_needs_every_fixed_class(tmp_path: Path, cache_dir: str) -> None:
    path = write_frame(three_class_frame(5), tmp_path / "d.csv")
    args = DataArguments(dataset=str(path), labels="neg,neu,pos,other", data_cache_dir=cache_dir)
    with pytest.raises(DataError, match=r"no rows of class 'other'; cannot balance"):
        prepare_data(args)


# ---------------------------------------------------------------------------------------------
# The book's split, against the literal pandas steps of gpt_class_finetune.py
# ---------------------------------------------------------------------------------------------


def book_split_with_pandas(path_or_buffer) -> dict[str, pd.DataFrame]:
    """The book's own steps (ch06 gpt_class_finetune.py), written out with pandas."""
    df = pd.read_csv(path_or_buffer, sep="\t", header=None, names=["Label", "Text"])
    num_spam = df[df["Label"] == "spam"].shape[0]
    ham_subset = df[df["Label"] == "ham"].sample(num_spam, random_state=123)
    balanced = pd.concat([ham_subset, df[df["Label"] == "spam"]])
    balanced["Label"] = balanced["Label"].map({"ham": 0, "spam": 1})
    balanced = balanced.sample(frac=1, random_state=123).reset_index(drop=True)
    return cut_70_10_20(balanced)


def cut_70_10_20(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The book's `random_split` cut (both scripts): `int()` of 70% and 10%, test the rest."""
    train_end = int(len(frame) * 0.7)
    validation_end = train_end + int(len(frame) * 0.1)
    return {
        "train": frame[:train_end],
        "validation": frame[train_end:validation_end],
        "test": frame[validation_end:],
    }


def bonus_split_with_pandas(path) -> dict[str, pd.DataFrame]:
    """The bonus experiments' own steps (ch06/02 additional_experiments.py `create_dataset_csvs`
    and `random_split`), written out with pandas, CSV round trip included."""
    df = pd.read_csv(path, sep="\t", header=None, names=["Label", "Text"])
    n_spam = df[df["Label"] == "spam"].shape[0]
    ham_sampled = df[df["Label"] == "ham"].sample(n_spam, random_state=123)
    balanced_df = pd.concat([ham_sampled, df[df["Label"] == "spam"]])
    balanced_df = balanced_df.sample(frac=1, random_state=123).reset_index(drop=True)
    balanced_df["Label"] = balanced_df["Label"].map({"ham": 0, "spam": 1})
    shuffled = balanced_df.sample(frac=1, random_state=123).reset_index(drop=True)
    splits = {}
    for name, frame in cut_70_10_20(shuffled).items():
        buffer = io.StringIO()
        frame.to_csv(buffer, index=None)
        splits[name] = pd.read_csv(io.StringIO(buffer.getvalue()))
    return splits


def assert_same_split(dataset, book: dict[str, pd.DataFrame]) -> None:
    for split, frame in book.items():
        assert dataset[split]["text"] == list(frame["Text"]), split
        assert dataset[split]["label"] == list(frame["Label"]), split


def test_book_split_is_the_books(
    sms_file: Path, tmp_path: Path, tokenizer, caplog: pytest.LogCaptureFixture
) -> None:
    book = book_split_with_pandas(sms_file)
    assert [len(frame) for frame in book.values()] == [1045, 149, 300]
    args = DataArguments(
        dataset=str(sms_file),
        context_length="longest_training_example",
        data_cache_dir=str(tmp_path / "c"),
    )
    with caplog.at_level(logging.WARNING):
        prepared = prepare_data(args)
    assert "merges some quoted" in caplog.text and "--split clean" in caplog.text
    assert prepared.report.split == "book"
    assert prepared.report.rows_read == {"train": 5572}
    assert_same_split(prepared.dataset, book)
    longest = max(len(ids) for ids in tokenizer(list(book["train"]["Text"]))["input_ids"])
    assert longest == prepared.max_length == 120
    assert {len(ids) for ds in prepared.dataset.values() for ids in ds["input_ids"]} == {120}


def test_bonus_split_is_the_bonus_scripts(sms_file: Path, tmp_path: Path, tokenizer) -> None:
    bonus = bonus_split_with_pandas(sms_file)
    chapter = book_split_with_pandas(sms_file)
    shared = [len(set(bonus[s]["Text"]) & set(chapter[s]["Text"])) for s in bonus]
    assert shared == [725, 22, 66]  # the same 1494 texts, dealt out differently
    args = DataArguments(
        dataset=str(sms_file),
        split="bonus",
        context_length="longest_training_example",
        data_cache_dir=str(tmp_path / "c"),
    )
    prepared = prepare_data(args)
    assert prepared.report.split == "bonus"
    assert_same_split(prepared.dataset, bonus)
    longest = max(len(ids) for ids in tokenizer(list(bonus["train"]["Text"]))["input_ids"])
    assert longest == prepared.max_length == 120


def test_book_split_from_the_hub_copy(
    sms_file: Path, sms_rows: list[tuple[str, str]], cache_dir: str, monkeypatch
) -> None:
    """The Hub's ucirvine/sms_spam holds the file's lines (with their newline): same book split."""
    features = datasets.Features(
        sms=datasets.Value("string"), label=datasets.ClassLabel(names=list(SMS_LABELS))
    )
    hub = datasets.DatasetDict(
        train=datasets.Dataset.from_dict(
            {
                "sms": [text + "\n" for _, text in sms_rows],
                "label": [SMS_LABELS.index(label) for label, _ in sms_rows],
            },
            features=features,
        )
    )
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: hub)
    dataset, info = load_splits(DataArguments(dataset=SMS_SPAM_HUB_ID, data_cache_dir=cache_dir))
    assert info.split == "book"
    assert_same_split(dataset, book_split_with_pandas(sms_file))


@pytest.mark.parametrize(
    "kwargs, flag",
    [
        ({"dedupe": True}, "--dedupe"),
        ({"balance": False}, "--no_balance"),
        ({"split_fractions": "0.8,0.1,0.1"}, "--split_fractions 0.8,0.1,0.1"),
    ],
)
def test_book_split_conflicts(
    kwargs: dict, flag: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_sms(tmp_path / "SMSSpamCollection", [("ham", "a"), ("spam", "b")] * 10)
    for split in ("book", "bonus"):
        with pytest.raises(UsageError, match=f"--split {split} conflicts with {re.escape(flag)}"):
            resolve_split(DataArguments(dataset=str(path), split=split, **kwargs))
    with caplog.at_level(logging.WARNING):
        assert resolve_split(DataArguments(dataset=str(path), **kwargs)) == "clean"
    assert f"{flag} given: using --split clean" in caplog.text
    assert resolve_split(DataArguments(dataset=str(path))) == "book"


def test_book_split_needs_a_book_source(tmp_path: Path) -> None:
    path = write_frame(three_class_frame(5), tmp_path / "d.csv")
    assert resolve_split(DataArguments(dataset=str(path))) == "clean"
    assert resolve_split(DataArguments(dataset="someone/reviews")) == "clean"
    with pytest.raises(UsageError, match=r"--split book: defined for the SMS Spam Collection"):
        resolve_split(DataArguments(dataset=str(path), split="book"))
    with pytest.raises(UsageError, match=r"^--split bonus: defined for the SMS Spam Collection "):
        resolve_split(DataArguments(dataset="imdb", split="bonus"))
    for dataset in ("sms_spam", SMS_SPAM_HUB_ID, "imdb", str(tmp_path / "SMSSpamCollection")):
        assert resolve_split(DataArguments(dataset=dataset)) == "book"


def test_max_samples_keep_the_first_rows(sms_file: Path, cache_dir: str) -> None:
    full, _ = load_splits(DataArguments(dataset=str(sms_file), data_cache_dir=cache_dir))
    args = DataArguments(
        dataset=str(sms_file), max_train_samples=100, max_eval_samples=20, data_cache_dir=cache_dir
    )
    small, info = load_splits(args)
    assert small["train"]["text"] == full["train"]["text"][:100]
    for split in ("validation", "test"):
        assert small[split]["text"] == full[split]["text"][:20]
    assert info.label2id == {"ham": 0, "spam": 1}
    big = DataArguments(dataset=str(sms_file), max_train_samples=10**6, data_cache_dir=cache_dir)
    assert load_splits(big)[0]["train"].num_rows == 1045


def test_load_splits_does_not_tokenize(tmp_path: Path, cache_dir: str) -> None:
    path = write_frame(three_class_frame(10), tmp_path / "d.csv")
    dataset, info = load_splits(DataArguments(dataset=str(path), data_cache_dir=cache_dir))
    assert {split: ds.column_names for split, ds in dataset.items()} == {
        split: ["text", "label"] for split in ("train", "validation", "test")
    }
    assert (info.split, info.balanced, info.rows_read) == ("clean", True, {"train": 30})


def test_a_new_source_is_one_entry(monkeypatch: pytest.MonkeyPatch, cache_dir: str) -> None:
    """A source added to the table is recognised, loaded, cleaned and split by its own book
    split, and named in the messages of the others; nothing else knows it."""
    frame = three_class_frame(4)

    def load_toy(args: DataArguments):
        data = datasets.Dataset.from_pandas(frame)
        return {"train": Split(data, "toy rows", "row", "text", "label")}, ["the toy source"]

    def in_order(loaded: LoadedSource, args: DataArguments) -> LoadedSource:
        pool = loaded.dataset["train"]
        parts = {"train": range(0, 8), "validation": range(8, 10), "test": range(10, 12)}
        return replace(loaded, dataset=datasets.DatasetDict(
            {name: pool.select(rows) for name, rows in parts.items()}))  # fmt: skip

    toy = Source("a toy", load_toy, keywords=("toy",), splits={"book": in_order})
    monkeypatch.setattr(sources, "SOURCES", (*sources.SOURCES, toy))
    dataset, info = load_splits(DataArguments(dataset="toy", data_cache_dir=cache_dir))
    assert (info.split, info.source, info.balanced) == ("book", "the toy source", False)
    assert info.label2id == {"neg": 0, "neu": 1, "pos": 2}
    assert dataset["validation"]["text"] == list(frame["text"][8:10])
    with pytest.raises(UsageError, match=r"^--split bonus: .* not toy; use --split book or clean$"):
        resolve_split(DataArguments(dataset="toy", split="bonus"))
    with pytest.raises(
        UsageError, match=r"^--split book: defined for the SMS Spam Collection, imdb and a toy only"
    ):
        resolve_split(DataArguments(dataset="someone/reviews", split="book"))
