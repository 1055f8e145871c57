"""Tests of the data sources: the SMS Spam Collection (file, UCI zip, Hub), CSV/TSV/JSONL/Parquet
files and Hub datasets, and the one-line errors for bad input (file, row or line, column)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import datasets
import pytest
from helpers import (
    THREE_CLASSES,
    assert_nothing_cached,
    sms_zip,
    three_class_frame,
    write_frame,
    write_sms,
)

from hf_spam.data import (
    SMS_LABELS,
    SMS_SPAM_FILENAME,
    SMS_SPAM_HUB_ID,
    SMS_SPAM_SHA256,
    DataArguments,
    DataError,
    format_report,
    load_raw_dataset,
    prepare_data,
    read_sms_spam_file,
    sources,
)


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


def test_download_verifies_and_caches(
    sms_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = sms_zip(tmp_path / "sms.zip", sms_file.read_bytes())
    calls = []
    monkeypatch.setattr(sources, "_download", lambda url, cache: calls.append(url) or str(archive))
    args = DataArguments(data_cache_dir=str(tmp_path / "cache"))
    raw, _ = load_raw_dataset(args)
    assert calls == [sources.SMS_SPAM_URL]
    assert raw["train"].num_rows == 5574
    monkeypatch.setattr(sources, "_download", lambda url, cache: pytest.fail("downloaded twice"))
    path = sources.download_sms_spam(args.data_cache_dir)
    assert sources._sha256(path) == SMS_SPAM_SHA256


def test_download_checksum_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = sms_zip(tmp_path / "sms.zip", b"ham\tnot the real file\n")
    monkeypatch.setattr(sources, "_download", lambda url, cache: str(archive))
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=r"sha256 checksum mismatch, expected 7d039a24.*deleted"):
        load_raw_dataset(DataArguments(data_cache_dir=str(cache)))
    assert not archive.exists()  # the next run downloads afresh
    assert not (cache / "hf_spam" / "sms_spam" / SMS_SPAM_FILENAME).exists()


def test_download_failure_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(url: str, cache: str | None) -> str:
        raise ConnectionError("Offline mode is enabled")

    monkeypatch.setattr(sources, "_download", offline)
    with pytest.raises(
        ConnectionError, match=r"could not download .*pass --dataset /path/to/SMSSpamCollection"
    ):
        sources.download_sms_spam(tmp_path)


def test_download_not_a_zip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "sms.zip"
    archive.write_bytes(b"<html>maintenance</html>")
    monkeypatch.setattr(sources, "_download", lambda url, cache: str(archive))
    with pytest.raises(DataError, match=r"expected a zip holding SMSSpamCollection"):
        sources.download_sms_spam(tmp_path / "cache")


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
