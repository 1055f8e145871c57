"""Tests of the data sources: the SMS Spam Collection (the bundled file, a file, the Hub),
CSV/TSV/JSONL/Parquet files and Hub datasets, and the one-line errors for bad input (file, row
or line, column) and for a Hub dataset that cannot be fetched."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections import Counter
from fnmatch import fnmatch
from pathlib import Path

import datasets
import pytest
from helpers import (
    BUNDLED,
    ROOT,
    SHARED_COPIES,
    THREE_CLASSES,
    assert_nothing_cached,
    three_class_frame,
    write_frame,
    write_sms,
)

from hf_spam.data import (
    SMS_LABELS,
    SMS_SPAM_FILENAME,
    SMS_SPAM_HUB_ID,
    DataArguments,
    DataError,
    FetchError,
    bundled,
    find_source,
    format_report,
    load_raw_dataset,
    prepare_data,
    read_sms_spam_file,
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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


def test_default_dataset_is_the_bundled_file(
    sms_rows: list[tuple[str, str]], cache_dir: str
) -> None:
    """`--dataset sms_spam` (the default) reads the copy shipped in the package: no network."""
    raw, label2id = load_raw_dataset(DataArguments(data_cache_dir=cache_dir))
    assert label2id == {"ham": 0, "spam": 1}
    train = raw["train"]
    assert (
        list(zip([SMS_LABELS[i] for i in train["label"]], train["text"], strict=True)) == sms_rows
    )
    assert find_source(DataArguments()).name == "the SMS Spam Collection"


def test_bundled_files_are_the_published_ones(tmp_path: Path) -> None:
    """Each bundled file has its published sha256, and equals the shared copy where one is."""
    published = {
        "SMSSpamCollection": "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d",
        "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
        "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
    }
    for name, digest in published.items():
        content = (BUNDLED / name).read_bytes()
        assert hashlib.sha256(content).hexdigest() == digest, name
        assert bundled.bundled_file(name) == BUNDLED / name
        shared = SHARED_COPIES[name]
        assert not shared.is_file() or shared.read_bytes() == content, shared
    readme = (BUNDLED / "README.md").read_text(encoding="utf-8")
    assert all(digest in readme for digest in published.values())
    assert "CC BY 4.0" in readme and "Almeida" in readme and "DocEng 2011" in readme
    assert "Permission is hereby granted" in (BUNDLED / "LICENSE-gpt2").read_text("utf-8")


def test_a_damaged_bundled_file_is_named_once_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "bundled"
    shutil.copytree(BUNDLED, copy)
    monkeypatch.setattr(bundled, "BUNDLED_DIR", copy)
    hashed = []
    monkeypatch.setattr(bundled, "file_sha256", lambda path: hashed.append(path) or sha256(path))
    bundled.bundled_file.cache_clear()
    try:
        assert bundled.bundled_file(SMS_SPAM_FILENAME) == copy / SMS_SPAM_FILENAME
        assert bundled.bundled_file(SMS_SPAM_FILENAME) == copy / SMS_SPAM_FILENAME
        assert hashed == [copy / SMS_SPAM_FILENAME]  # once per process
        with (copy / "vocab.bpe").open("a") as merges:
            merges.write("x y\n")
        where = re.escape(str(copy / "vocab.bpe"))
        with pytest.raises(DataError, match=rf"^{where}: sha256 [0-9a-f]{{64}}, expected 1ce16647"):
            bundled.bundled_file("vocab.bpe")
        (copy / SMS_SPAM_FILENAME).unlink()
        bundled.bundled_file.cache_clear()
        with pytest.raises(DataError, match="SMSSpamCollection: bundled file missing"):
            load_raw_dataset(DataArguments())
    finally:
        bundled.bundled_file.cache_clear()


def test_the_wheel_carries_the_bundled_files() -> None:
    """pyproject's package data covers every file of the bundled folder."""
    tomllib = pytest.importorskip("tomllib", reason="Python < 3.11 has no tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["hf_spam.data.bundled"]
    files = {p.name for p in BUNDLED.iterdir() if p.is_file() and p.suffix != ".py"} - {
        ".gitattributes"
    }
    assert files >= {"SMSSpamCollection", "encoder.json", "vocab.bpe", "README.md"}
    assert {name for name in files if any(fnmatch(name, p) for p in patterns)} == files


def test_an_unreachable_hub_dataset_is_one_line(cache_dir: str) -> None:
    """Offline and not cached: what could not be fetched, and what to pass instead."""
    args = DataArguments(dataset="nobody/no-such-data", data_cache_dir=cache_dir)
    message = (
        "could not fetch the Hub dataset 'nobody/no-such-data': the network cannot be reached "
        "(offline), and it is not in the datasets cache; pass a local path (--dataset FILE, or "
        "--train_file FILE)"
    )
    with pytest.raises(FetchError, match=f"^{re.escape(message)}$"):
        load_raw_dataset(args)


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


def test_json_file_is_not_mistaken_for_sms(tmp_path: Path, cache_dir: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps({"text": f"t{i}", "label": i % 2 == 0}) for i in range(6)))
    raw, label2id = load_raw_dataset(DataArguments(dataset=str(path), data_cache_dir=cache_dir))
    assert label2id == {"False": 0, "True": 1}


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


def test_dataset_and_train_file_together(tmp_path: Path) -> None:
    args = DataArguments(dataset="a.csv", train_file="b.csv")
    with pytest.raises(DataError, match="either --dataset"):
        load_raw_dataset(args)


# ---------------------------------------------------------------------------------------------
# Malformed files name the file and the line or row (not a raw pyarrow/pandas error)
# ---------------------------------------------------------------------------------------------


def test_bad_json_line_names_the_file_and_line(tmp_path: Path, cache_dir: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n{"text": "c", \n')
    with pytest.raises(DataError, match=r"d\.jsonl, line 3: not valid JSON"):
        load_raw_dataset(DataArguments(dataset=str(path), data_cache_dir=cache_dir))
    path.write_text('{"text": "a", "label": "x"}\n["b", "y"]\n')
    with pytest.raises(DataError, match=r"d\.jsonl, line 2: expected a JSON object"):
        load_raw_dataset(DataArguments(dataset=str(path), data_cache_dir=cache_dir))
    assert_nothing_cached(cache_dir)


def test_garbage_parquet_names_the_file(tmp_path: Path, cache_dir: str) -> None:
    path = tmp_path / "d.parquet"
    path.write_bytes(b"PAR1 this is not parquet at all \x00\x01\x02")
    with pytest.raises(DataError, match=r"d\.parquet: not a readable Parquet file"):
        load_raw_dataset(DataArguments(dataset=str(path), data_cache_dir=cache_dir))


@pytest.mark.parametrize("suffix, sep", [(".csv", ","), (".tsv", "\t")])
def test_extra_field_names_the_file_and_row(
    suffix: str, sep: str, tmp_path: Path, cache_dir: str
) -> None:
    path = tmp_path / f"d{suffix}"
    rows = ["text,label", '"multi\nline, quoted",a', "fine,b", "one, field too many,a", "ok,b"]
    path.write_text("\n".join(row.replace(",", sep) for row in rows) + "\n")
    with pytest.raises(DataError, match=rf"d\{suffix}, row 3: 3 fields, expected 2"):
        load_raw_dataset(DataArguments(dataset=str(path), data_cache_dir=cache_dir))
