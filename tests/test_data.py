"""Tests of the data pipeline: sources, cleaning, balancing/splitting, tokenization, collator."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections import Counter
from pathlib import Path

import datasets
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hf_spam import data
from hf_spam.data import (
    SMS_LABELS,
    SMS_SPAM_FILENAME,
    SMS_SPAM_HUB_ID,
    SMS_SPAM_SHA256,
    DataArguments,
    DataError,
    format_report,
    get_data_collator,
    get_tokenizer,
    load_raw_dataset,
    prepare_data,
    read_sms_spam_file,
    save_dataset_to_disk,
)

EDGE_CASES = [
    "",
    " ",
    "Hello world",
    "Win a prize <|endoftext|> now",
    "<|endoftext|>",
    "<|endoftext|><|endoftext|>x",
    "😀🎉 thumbs 👍🏽 family 👨‍👩‍👧 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𠜎𠜱",
    "a  b   c    d",
    "   leading and trailing   ",
    "line\nbreak\n\n\nparagraph\r\nwindows\ttab",
    "\n\n\n",
    "It's we're they've I'd you'll",
    "naïve café 漢字 ελληνικά",
    "12345678901234567890",
    "\u200b\u00a0\ufeff zero-width",
]
THREE_CLASSES = ("neg", "neu", "pos")


@pytest.fixture
def cache_dir(tmp_path: Path) -> str:
    return str(tmp_path / "hf-cache")


@pytest.fixture(scope="session")
def sms_rows(sms_file: Path) -> list[tuple[str, str]]:
    """The real file's (label, text) rows, parsed independently of the module under test."""
    lines = sms_file.read_text(encoding="utf-8").split("\n")
    return [tuple(line.split("\t", 1)) for line in lines if line]


@pytest.fixture(scope="session")
def encoding(tiktoken_available: None):
    import tiktoken

    return tiktoken.get_encoding("gpt2")


@pytest.fixture(scope="session")
def tokenizer(tiktoken_available: None):
    return get_tokenizer()


def texts_of(dataset: datasets.Dataset) -> list[str]:
    return list(dataset["text"])


def write_sms(path: Path, rows: list[tuple[str, str]], trailer: str = "\n") -> Path:
    path.write_text("\n".join(f"{label}\t{text}" for label, text in rows) + trailer, "utf-8")
    return path


def three_class_frame(per_class: int = 10, label_values=THREE_CLASSES) -> pd.DataFrame:
    """Texts with commas, quotes, tabs and newlines that naive parsers mangle."""
    rows = []
    for value, name in zip(label_values, THREE_CLASSES, strict=True):
        for i in range(per_class):
            rows.append({"text": f'{name} "quoted", text\t{i}\nline two', "label": value})
    return pd.DataFrame(rows)


def write_frame(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def sms_zip(path: Path, content: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(SMS_SPAM_FILENAME, content)
        archive.writestr("readme", "SMS Spam Collection v.1")
    return path


# ---------------------------------------------------------------------------------------------
# The real SMS Spam Collection
# ---------------------------------------------------------------------------------------------


def test_sms_file_parses_every_row(sms_file: Path, sms_rows: list[tuple[str, str]]) -> None:
    texts, labels = read_sms_spam_file(sms_file)
    assert len(texts) == 5574
    assert Counter(labels) == {"ham": 4827, "spam": 747}
    assert list(zip(labels, texts, strict=True)) == sms_rows
    assert sum('"' in text for text in texts) > 0  # quotes survived as literal text


def test_sms_file_loads_as_dataset(sms_file: Path, cache_dir: str) -> None:
    raw, label2id = load_raw_dataset(DataArguments(dataset=str(sms_file), data_cache_dir=cache_dir))
    assert label2id == {"ham": 0, "spam": 1}
    assert list(raw) == ["train"]
    assert raw["train"].features["label"].names == list(SMS_LABELS)
    assert raw["train"].num_rows == 5574
    assert Counter(raw["train"]["label"]) == {0: 4827, 1: 747}


def test_sms_book_split_is_balanced_and_reproducible(
    sms_file: Path, sms_rows: list[tuple[str, str]], tmp_path: Path, tiktoken_available: None
) -> None:
    runs = [
        prepare_data(
            DataArguments(
                dataset=str(sms_file),
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


def test_tokenizer_matches_tiktoken_on_the_whole_sms_file(
    sms_rows: list[tuple[str, str]], tokenizer, encoding
) -> None:
    texts = [text for _, text in sms_rows]
    assert tokenizer(texts)["input_ids"] == encoding.encode_ordinary_batch(texts)


# ---------------------------------------------------------------------------------------------
# UCI download and the Hub copy (offline: the download and load_dataset are replaced)
# ---------------------------------------------------------------------------------------------


def test_download_verifies_and_caches(
    sms_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = sms_zip(tmp_path / "sms.zip", sms_file.read_bytes())
    calls = []
    monkeypatch.setattr(data, "_download", lambda url, cache: calls.append(url) or str(archive))
    args = DataArguments(data_cache_dir=str(tmp_path / "cache"))
    raw, _ = load_raw_dataset(args)
    assert calls == [data.SMS_SPAM_URL]
    assert raw["train"].num_rows == 5574
    monkeypatch.setattr(data, "_download", lambda url, cache: pytest.fail("downloaded twice"))
    path = data.download_sms_spam(args.data_cache_dir)
    assert data._sha256(path) == SMS_SPAM_SHA256


def test_download_checksum_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = sms_zip(tmp_path / "sms.zip", b"ham\tnot the real file\n")
    monkeypatch.setattr(data, "_download", lambda url, cache: str(archive))
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=r"sha256 checksum mismatch, expected 7d039a24.*deleted"):
        load_raw_dataset(DataArguments(data_cache_dir=str(cache)))
    assert not archive.exists()  # the next run downloads afresh
    assert not (cache / "hf_spam" / "sms_spam" / SMS_SPAM_FILENAME).exists()


def test_download_failure_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(url: str, cache: str | None) -> str:
        raise ConnectionError("Offline mode is enabled")

    monkeypatch.setattr(data, "_download", offline)
    with pytest.raises(
        ConnectionError, match=r"could not download .*pass --dataset /path/to/SMSSpamCollection"
    ):
        data.download_sms_spam(tmp_path)


def test_download_not_a_zip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "sms.zip"
    archive.write_bytes(b"<html>maintenance</html>")
    monkeypatch.setattr(data, "_download", lambda url, cache: str(archive))
    with pytest.raises(DataError, match=r"expected a zip holding SMSSpamCollection"):
        data.download_sms_spam(tmp_path / "cache")


def test_hub_sms_spam_matches_the_file(
    tmp_path: Path, cache_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [("ham", 'Ok "lar"... Joking'), ("spam", "WIN  a prize\tnow"), ("ham", "ok ")] * 4
    path = write_sms(tmp_path / SMS_SPAM_FILENAME, rows)
    # The Hub copy: columns sms/label (ClassLabel ham, spam), texts keep their line's newline.
    hub = datasets.DatasetDict(
        train=datasets.Dataset.from_dict(
            {
                "sms": [text + "\n" for _, text in rows],
                "label": [SMS_LABELS.index(label) for label, _ in rows],
            },
            features=datasets.Features(
                sms=datasets.Value("string"), label=datasets.ClassLabel(names=list(SMS_LABELS))
            ),
        )
    )
    seen = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: seen.append(a) or hub)
    from_hub, hub_labels = load_raw_dataset(
        DataArguments(dataset=SMS_SPAM_HUB_ID, data_cache_dir=cache_dir)
    )
    assert seen[0][0] == SMS_SPAM_HUB_ID
    monkeypatch.undo()
    from_file, file_labels = load_raw_dataset(
        DataArguments(dataset=str(path), data_cache_dir=cache_dir)
    )
    assert hub_labels == file_labels == {"ham": 0, "spam": 1}
    assert from_hub["train"].to_dict() == from_file["train"].to_dict()
    assert from_hub["train"].features == from_file["train"].features


def test_generic_hub_dataset_keeps_its_splits(
    cache_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = three_class_frame(4).rename(columns={"text": "review", "label": "stars"})
    hub = datasets.DatasetDict(
        train=datasets.Dataset.from_pandas(frame),
        test=datasets.Dataset.from_pandas(frame.iloc[:5]),
        unsupervised=datasets.Dataset.from_pandas(frame),
    )
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: hub)
    args = DataArguments(dataset="someone/reviews", text_column="review", label_column="stars")
    raw, label2id = load_raw_dataset(args)
    assert label2id == {"neg": 0, "neu": 1, "pos": 2}
    assert sorted(raw) == ["test", "train"]
    assert raw["test"].num_rows == 5


# ---------------------------------------------------------------------------------------------
# Any labelled text: CSV, TSV, JSON lines, Parquet
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_three_class_files(
    suffix: str, tmp_path: Path, cache_dir: str, tiktoken_available: None
) -> None:
    frame = three_class_frame(10)
    path = write_frame(frame, tmp_path / f"reviews{suffix}")
    prepared = prepare_data(
        DataArguments(dataset=str(path), data_cache_dir=cache_dir), context_length=64
    )
    assert prepared.label2id == {"neg": 0, "neu": 1, "pos": 2}
    assert prepared.id2label == {0: "neg", 1: "neu", 2: "pos"}
    assert {split: ds.num_rows for split, ds in prepared.dataset.items()} == {
        "train": 21,
        "validation": 3,
        "test": 6,
    }
    expected = set(zip(frame["text"], frame["label"], strict=True))
    for ds in prepared.dataset.values():
        assert ds.features["label"].names == list(THREE_CLASSES)
        for example in ds:
            assert (example["text"], prepared.id2label[example["label"]]) in expected
    assert set(prepared.dataset["train"].column_names) == {
        "text",
        "label",
        "input_ids",
        "attention_mask",
        "length",
    }


def test_int_labels_and_train_file(tmp_path: Path, cache_dir: str) -> None:
    path = write_frame(three_class_frame(5, label_values=(2, 0, 1)), tmp_path / "train.csv")
    raw, label2id = load_raw_dataset(DataArguments(train_file=str(path), data_cache_dir=cache_dir))
    assert label2id == {"0": 0, "1": 1, "2": 2}
    assert raw["train"].features["label"].names == ["0", "1", "2"]
    assert raw["train"][0]["label"] == 2


def test_fixed_labels_set_the_order(tmp_path: Path, cache_dir: str) -> None:
    path = write_frame(three_class_frame(5), tmp_path / "train.jsonl")
    args = DataArguments(dataset=str(path), labels="pos,neu,neg", data_cache_dir=cache_dir)
    raw, label2id = load_raw_dataset(args)
    assert label2id == {"pos": 0, "neu": 1, "neg": 2}
    assert raw["train"][0]["label"] == 2  # the first rows are "neg"


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


# ---------------------------------------------------------------------------------------------
# Tokenization, truncation and padding
# ---------------------------------------------------------------------------------------------


def test_dynamic_padding_truncates_and_collates(tmp_path: Path, cache_dir: str, encoding) -> None:
    frame = three_class_frame(6)
    frame.loc[0, "text"] = "a long text " * 20
    path = write_frame(frame, tmp_path / "d.csv")
    args = DataArguments(dataset=str(path), balance=False, max_length=8, data_cache_dir=cache_dir)
    prepared = prepare_data(args, context_length=16)
    assert prepared.max_length == 8
    everything = [example for ds in prepared.dataset.values() for example in ds]
    assert (
        sum(prepared.report.truncated.values())
        == sum(len(encoding.encode_ordinary(text)) > 8 for text in frame["text"])
        > 0
    )
    for example in everything:
        ids = encoding.encode_ordinary(example["text"])[:8]
        assert example["input_ids"] == ids  # not padded: the collator does it
        assert example["length"] == len(ids)
        assert example["attention_mask"] == [1] * len(ids)
    short = {"input_ids": [5], "attention_mask": [1], "label": 2, "text": "x", "length": 1}
    batch = get_data_collator(prepared)([dict(everything[0]), short])
    width = len(everything[0]["input_ids"])
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (2, width)
    assert batch["input_ids"][1].tolist() == [5] + [50256] * (width - 1)
    assert batch["attention_mask"][1].tolist() == [1] + [0] * (width - 1)
    assert batch["labels"].tolist() == [everything[0]["label"], 2]
    assert set(batch) == {"input_ids", "attention_mask", "labels"}


def test_longest_train_caps_at_context_length(
    tmp_path: Path, cache_dir: str, tiktoken_available: None
) -> None:
    path = write_frame(three_class_frame(10), tmp_path / "d.csv")
    args = DataArguments(dataset=str(path), padding="longest_train", data_cache_dir=cache_dir)
    prepared = prepare_data(args, context_length=4)
    assert prepared.max_length == 4
    assert all(len(ids) == 4 for ds in prepared.dataset.values() for ids in ds["input_ids"])
    assert prepared.report.truncated == {"train": 21, "validation": 3, "test": 6}
    batch = get_data_collator(prepared)(list(prepared.dataset["test"]))
    assert batch["input_ids"].shape == (6, 4)


def test_collator_pads_to_multiple_and_with_tokenizer(tokenizer) -> None:
    collator = get_data_collator(tokenizer, pad_to_multiple_of=8)
    batch = collator([{"input_ids": [1, 2, 3], "labels": 1}, {"input_ids": [4], "labels": 0}])
    assert batch["input_ids"].tolist() == [[1, 2, 3] + [50256] * 5, [4] + [50256] * 7]
    assert batch["attention_mask"].sum(dim=1).tolist() == [3, 1]
    assert batch["labels"].dtype == torch.long


@pytest.mark.parametrize("text", EDGE_CASES)
def test_tokenizer_edge_cases_match_tiktoken(text: str, tokenizer, encoding) -> None:
    expected = encoding.encode_ordinary(text)
    assert tokenizer(text)["input_ids"] == expected
    assert tokenizer.encode(text) == expected
    assert tokenizer.decode(expected) == text


def test_tokenizer_survives_save_and_batches(tokenizer, encoding, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    assert len(tokenizer) == 50257
    assert tokenizer.pad_token == tokenizer.eos_token == "<|endoftext|>"
    assert tokenizer.pad_token_id == tokenizer.eos_token_id == 50256
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded.split_special_tokens
    texts = [text for text in EDGE_CASES if text]
    batch = reloaded(texts, padding=True, truncation=True)
    width = max(len(encoding.encode_ordinary(text)) for text in texts)
    for text, ids, mask in zip(texts, batch["input_ids"], batch["attention_mask"], strict=True):
        expected = encoding.encode_ordinary(text)
        assert ids == expected + [50256] * (width - len(expected))
        assert mask == [1] * len(expected) + [0] * (width - len(expected))
    assert (
        reloaded("x " * 2000, truncation=True)["input_ids"]
        == encoding.encode_ordinary("x " * 2000)[:1024]
    )


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40))
def test_tokenizer_matches_tiktoken_on_random_text(tokenizer, encoding, text: str) -> None:
    assert tokenizer(text)["input_ids"] == encoding.encode_ordinary(text)


def test_tokenize_map_is_cached(tmp_path: Path, cache_dir: str, tiktoken_available: None) -> None:
    path = write_frame(three_class_frame(10), tmp_path / "d.csv")
    args = DataArguments(dataset=str(path), data_cache_dir=cache_dir)
    first = prepare_data(args, context_length=32)
    second = prepare_data(args, context_length=32)
    for split in first.dataset:
        assert first.dataset[split]._fingerprint == second.dataset[split]._fingerprint
        assert first.dataset[split].cache_files == second.dataset[split].cache_files
        assert first.dataset[split].cache_files  # Arrow files in the cache, not only memory


# ---------------------------------------------------------------------------------------------
# Report, saving
# ---------------------------------------------------------------------------------------------


def test_format_report(tmp_path: Path, cache_dir: str, tiktoken_available: None) -> None:
    path = write_frame(three_class_frame(10), tmp_path / "d.csv")
    prepared = prepare_data(
        DataArguments(dataset=str(path), data_cache_dir=cache_dir), context_length=8
    )
    text = format_report(prepared.report)
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("split"))
    assert header.split()[:6] == ["split", "neg", "neu", "pos", "total", "tokens"]
    train = next(line for line in lines if line.startswith("train"))
    assert train.split()[4] == "21"
    assert "truncated" in header
    assert "test in train" in text
    assert "Rows read: 30; empty texts dropped: 0; duplicate texts dropped: 0" in text


def test_save_to_disk_is_atomic_and_refuses_to_overwrite(tmp_path: Path) -> None:
    dataset = datasets.DatasetDict(train=datasets.Dataset.from_dict({"text": ["a"], "label": [0]}))
    target = tmp_path / "out"
    save_dataset_to_disk(dataset, target)
    assert datasets.load_from_disk(str(target))["train"]["text"] == ["a"]
    with pytest.raises(FileExistsError, match="not empty; pass --overwrite"):
        save_dataset_to_disk(dataset, target)
    other = datasets.DatasetDict(train=datasets.Dataset.from_dict({"text": ["b"], "label": [1]}))
    save_dataset_to_disk(other, target, overwrite=True)
    assert datasets.load_from_disk(str(target))["train"]["text"] == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary leftovers


# ---------------------------------------------------------------------------------------------
# Bad input: each names the file, row/line or column and what was expected
# ---------------------------------------------------------------------------------------------


def assert_nothing_cached(cache_dir: str) -> None:
    assert not list(Path(cache_dir).rglob("*.arrow"))


def test_missing_file(tmp_path: Path, cache_dir: str) -> None:
    for name in ("nope.csv", SMS_SPAM_FILENAME):
        with pytest.raises(DataError, match=rf"{name}: file not found"):
            load_raw_dataset(DataArguments(dataset=str(tmp_path / name), data_cache_dir=cache_dir))


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.csv", "", "file is empty"),
        (SMS_SPAM_FILENAME, "\n\n", "file is empty"),
        ("header.csv", "text,label\n", "no data rows"),
    ],
)
def test_empty_files(name: str, content: str, message: str, tmp_path: Path, cache_dir: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=rf"{name}: {message}"):
        load_raw_dataset(DataArguments(dataset=str(path), data_cache_dir=cache_dir))


def test_missing_column(tmp_path: Path, cache_dir: str) -> None:
    path = write_frame(three_class_frame(2), tmp_path / "d.csv")
    args = DataArguments(dataset=str(path), text_column="review", data_cache_dir=cache_dir)
    with pytest.raises(DataError, match=r"d\.csv: no column 'review' \(found 'text', 'label'\)"):
        load_raw_dataset(args)


@pytest.mark.parametrize(
    "content, message",
    [
        (
            "ham\tfine\nspam no tab here\nham\tok\n",
            r"line 2: no tab found, expected 'label<TAB>text'",
        ),
        ("ham\tfine\n\nham\tok\n", r"line 2: no tab found"),
        (
            "ham\tfine\nham\tok\neggs\tspam?\n",
            r"line 3: unknown label 'eggs', expected one of ham, spam",
        ),
        ("ham\tfine\nspam\t\xff\xfe broken\n", r"line 2: bytes b'\\xff' are not valid UTF-8"),
    ],
)
def test_bad_sms_lines(content: str, message: str, tmp_path: Path, cache_dir: str) -> None:
    path = tmp_path / SMS_SPAM_FILENAME
    path.write_bytes(content.encode("latin-1") if "\xff" in content else content.encode())
    with pytest.raises(DataError, match=rf"{SMS_SPAM_FILENAME}, {message}"):
        load_raw_dataset(DataArguments(dataset=str(path), data_cache_dir=cache_dir))
    assert_nothing_cached(cache_dir)


def test_sms_file_without_final_newline_and_crlf(tmp_path: Path, cache_dir: str) -> None:
    rows = [("ham", "one"), ("spam", 'two "quoted'), ("ham", "three")]
    for trailer in ("", "\n", "\n\n\n"):
        path = write_sms(tmp_path / SMS_SPAM_FILENAME, rows, trailer)
        assert read_sms_spam_file(path) == (["one", 'two "quoted', "three"], ["ham", "spam", "ham"])
    path.write_bytes(b"ham\tone\r\nspam\ttwo\r\n")
    assert read_sms_spam_file(path) == (["one", "two"], ["ham", "spam"])


@pytest.mark.parametrize(
    "content, message",
    [
        (
            b"text,label\nfine,a\nalso fine,b\nbad \xc3\x28 bytes,a\n",
            r"line 4: bytes b'\\xc3' are not",
        ),
        (b"text,label\nfine,a\ncut \xe2\x82", r"line 3: file ends inside a UTF-8 character"),
    ],
)
def test_bad_utf8_in_csv(content: bytes, message: str, tmp_path: Path, cache_dir: str) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=rf"d\.csv, {message}"):
        load_raw_dataset(DataArguments(dataset=str(path), data_cache_dir=cache_dir))
    assert_nothing_cached(cache_dir)


def test_unknown_label_when_labels_are_fixed(tmp_path: Path, cache_dir: str) -> None:
    frame = three_class_frame(2)
    frame.loc[3, "label"] = "maybe"
    path = write_frame(frame, tmp_path / "d.csv")
    args = DataArguments(dataset=str(path), labels="neg,neu,pos", data_cache_dir=cache_dir)
    with pytest.raises(
        DataError,
        match=r"d\.csv, row 4: unknown label 'maybe' in column 'label', expected one of neg, neu, pos",
    ):
        load_raw_dataset(args)


def test_missing_label(tmp_path: Path, cache_dir: str) -> None:
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,x\nb,\nc,y\n")
    with pytest.raises(DataError, match=r"d\.csv, row 2: no label in column 'label'"):
        load_raw_dataset(DataArguments(dataset=str(path), data_cache_dir=cache_dir))


def test_empty_texts_dropped_with_a_count_or_refused(
    tmp_path: Path, cache_dir: str, tiktoken_available: None
) -> None:
    frame = three_class_frame(5).astype(object)
    frame.loc[1, "text"] = None  # null in Parquet (NaN in pandas)
    frame.loc[7, "text"] = "   \n "
    path = write_frame(frame, tmp_path / "d.parquet")
    prepared = prepare_data(
        DataArguments(dataset=str(path), balance=False, data_cache_dir=cache_dir)
    )
    assert prepared.report.empty_dropped == {"train": 2}
    assert sum(ds.num_rows for ds in prepared.dataset.values()) == 13
    assert "empty texts dropped: 2" in format_report(prepared.report)
    args = DataArguments(dataset=str(path), empty_text="error", data_cache_dir=cache_dir)
    with pytest.raises(DataError, match=r"d\.parquet, row 2: empty text in column 'text'"):
        load_raw_dataset(args)


def test_empty_sms_text_names_the_line(tmp_path: Path, cache_dir: str) -> None:
    path = write_sms(tmp_path / SMS_SPAM_FILENAME, [("ham", "a"), ("spam", "b"), ("spam", "")])
    args = DataArguments(dataset=str(path), empty_text="error", data_cache_dir=cache_dir)
    with pytest.raises(DataError, match=rf"{SMS_SPAM_FILENAME}, line 3: empty text"):
        load_raw_dataset(args)


def test_only_one_class(tmp_path: Path, cache_dir: str) -> None:
    path = write_sms(tmp_path / SMS_SPAM_FILENAME, [("ham", f"text {i}") for i in range(10)])
    with pytest.raises(
        DataError, match=r"only class 'ham' in column 'label', expected at least two"
    ):
        load_raw_dataset(DataArguments(dataset=str(path), data_cache_dir=cache_dir))


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


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"split_fractions": "0.7,0.2,0.2"},
            "split_fractions must be three positive numbers summing to 1",
        ),
        ({"split_fractions": "0.8,0.2"}, "split_fractions must be three"),
        ({"padding": "max_length"}, "padding must be one of"),
        ({"empty_text": "keep"}, "empty_text must be one of"),
        ({"labels": "spam"}, "labels must name two or more distinct classes"),
        ({"max_length": 0}, "max_length must be at least 1"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DataArguments(**kwargs)


def test_dataset_and_train_file_together(tmp_path: Path) -> None:
    args = DataArguments(dataset="a.csv", train_file="b.csv")
    with pytest.raises(DataError, match="either --dataset"):
        load_raw_dataset(args)


def test_arguments_parse_beside_training_arguments() -> None:
    from transformers import HfArgumentParser, TrainingArguments

    parser = HfArgumentParser((DataArguments, TrainingArguments))
    data_args, training_args = parser.parse_args_into_dataclasses(
        ["--output_dir", "x", "--no_balance", "--padding", "longest_train", "--split_seed", "7"]
    )
    assert (data_args.balance, data_args.padding, data_args.seed) == (False, "longest_train", 7)
    assert training_args.seed == 42


def test_json_file_is_not_mistaken_for_sms(tmp_path: Path, cache_dir: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps({"text": f"t{i}", "label": i % 2 == 0}) for i in range(6)))
    raw, label2id = load_raw_dataset(DataArguments(dataset=str(path), data_cache_dir=cache_dir))
    assert label2id == {"False": 0, "True": 1}
