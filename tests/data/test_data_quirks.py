"""Quirks real files have: a CSV field of megabytes, and labels spelled with stray spaces, in
another case, or as numbers in one file and strings in another (the rule of hf_spam.data.labels,
the same for every source)."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from datasets import ClassLabel, Dataset
from helpers import ROOT

from hf_spam.data import DataArguments, DataError, load_raw_dataset
from hf_spam.data.cleaning import clean_splits
from hf_spam.data.formats import Split
from hf_spam.files import csv_reader
from hf_spam.inference.files import iter_texts, read_texts

#: The csv module's own limit, restored for each test: any reader left on it fails.
CSV_MODULE_LIMIT = 131072
BIG_TEXT = 'WIN a £1000 prize, call now, "quoted", 2 MB long. ' * 42_000


@pytest.fixture(autouse=True)
def csv_module_limit():
    before = csv.field_size_limit(CSV_MODULE_LIMIT)
    yield
    csv.field_size_limit(before)


def _table(path: Path, rows: list[tuple[str, str]], delimiter: str) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def _rows_with_a_big_text() -> list[tuple[str, str]]:
    return (
        [(f"hello {i}", "ham") for i in range(6)]
        + [(f"win {i}", "spam") for i in range(5)]
        + [(BIG_TEXT, "spam")]
    )


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_a_2mb_field_loads_for_training(tmp_path, cache_dir, suffix):
    assert len(BIG_TEXT.encode()) > 2_000_000
    path = _table(
        tmp_path / f"big{suffix}", _rows_with_a_big_text(), "," if suffix == ".csv" else "\t"
    )
    raw, _ = load_raw_dataset(DataArguments(dataset=str(path), data_cache_dir=cache_dir))
    assert raw["train"]["text"][-1] == BIG_TEXT


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_a_2mb_field_loads_for_predict(tmp_path, suffix):
    rows = _rows_with_a_big_text()
    path = _table(tmp_path / f"big{suffix}", rows, "," if suffix == ".csv" else "\t")
    assert list(iter_texts(path)) == [text for text, _ in rows]
    assert read_texts(path) == [text for text, _ in rows]


def test_csv_reader_reads_what_csv_writer_wrote():
    buffer = io.StringIO()
    csv.writer(buffer).writerows([["a", BIG_TEXT], [BIG_TEXT * 3, "b"]])
    assert list(csv_reader(io.StringIO(buffer.getvalue()))) == [
        ["a", BIG_TEXT],
        [BIG_TEXT * 3, "b"],
    ]


# --------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------


def _labelled(path: Path, labels: list) -> Path:
    if path.suffix == ".jsonl":
        lines = [
            json.dumps({"text": f"text {i}", "label": label}) for i, label in enumerate(labels)
        ]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path
    return _table(path, [(f"text {i}", label) for i, label in enumerate(labels)], ",")


def test_surrounding_spaces_do_not_make_classes(tmp_path, cache_dir, caplog):
    labels = ["spam", "spam ", " ham", "ham", "\tham\t", "spam"]
    path = _labelled(tmp_path / "d.csv", labels)
    with caplog.at_level(logging.WARNING):
        raw, label2id = load_raw_dataset(DataArguments(dataset=str(path), data_cache_dir=cache_dir))
    assert label2id == {"ham": 0, "spam": 1}
    names = raw["train"].features["label"].names
    assert [names[i] for i in raw["train"]["label"]] == [label.strip() for label in labels]
    assert f"{path}: labels 'spam ', ' ham', '\\tham\\t' read without their surrounding spaces" in (
        caplog.text
    )


def test_labels_differing_by_case_are_refused(tmp_path, cache_dir):
    path = _labelled(tmp_path / "d.csv", ["spam", "ham", "ham", " Spam ", "spam"])
    message = (
        f"labels 'spam' ({path}, row 1) and 'Spam' ({path}, row 4) in column 'label' differ only "
        "by case; spell each class one way"
    )
    with pytest.raises(DataError) as info:
        load_raw_dataset(DataArguments(dataset=str(path), data_cache_dir=cache_dir))
    assert str(info.value) == message


def test_case_is_compared_across_files(tmp_path, cache_dir):
    train = _labelled(tmp_path / "train.csv", ["spam", "ham", "ham", "spam"])
    test = _labelled(tmp_path / "test.jsonl", ["ham", "HAM"])
    args = DataArguments(train_file=str(train), test_file=str(test), data_cache_dir=cache_dir)
    with pytest.raises(DataError) as info:
        load_raw_dataset(args)
    assert str(info.value) == (
        f"labels 'ham' ({train}, row 2) and 'HAM' ({test}, row 2) in column 'label' differ only "
        "by case; spell each class one way"
    )


def test_integers_and_their_digits_are_one_class(tmp_path, cache_dir, caplog):
    train = _labelled(tmp_path / "train.csv", ["0", "1", "1", "0", "10", "2"])  # read as integers
    test = _labelled(tmp_path / "test.jsonl", ["1", "0", "10", "2"])  # JSON strings
    args = DataArguments(train_file=str(train), test_file=str(test), data_cache_dir=cache_dir)
    with caplog.at_level(logging.WARNING):
        raw, label2id = load_raw_dataset(args)
    assert label2id == {"0": 0, "1": 1, "2": 2, "10": 3}  # in the order of the numbers
    names = raw["test"].features["label"].names
    assert [names[i] for i in raw["test"]["label"]] == ["1", "0", "10", "2"]
    assert (
        f"labels: the numbers of {train} and the texts of {test} read as the same classes "
        "(0, 1, 10, 2)" in caplog.text
    )


def test_a_case_variant_of_a_fixed_label_is_named(tmp_path, cache_dir):
    path = _labelled(tmp_path / "d.csv", ["neg", "Pos", "neg"])
    args = DataArguments(dataset=str(path), labels="neg,pos", data_cache_dir=cache_dir)
    with pytest.raises(DataError) as info:
        load_raw_dataset(args)
    assert str(info.value) == (
        f"{path}, row 2: unknown label 'Pos' in column 'label', expected one of neg, pos "
        "('Pos' differs only by case from 'pos')"
    )


def test_the_sms_format_follows_the_rule(tmp_path, cache_dir):
    path = tmp_path / "SMSSpamCollection"
    path.write_text("ham \tsee you\n spam\tWIN now\nham\tok\nspam\tfree\n", encoding="utf-8")
    raw, label2id = load_raw_dataset(DataArguments(dataset=str(path), data_cache_dir=cache_dir))
    assert label2id == {"ham": 0, "spam": 1} and raw["train"]["label"] == [0, 1, 0, 1]
    path.write_text("ham\tsee you\nSpam\tWIN now\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_raw_dataset(DataArguments(dataset=str(path), data_cache_dir=cache_dir))
    assert str(info.value) == (
        f"{path}, line 2: unknown label 'Spam', expected one of ham, spam ('Spam' differs only "
        "by case from 'spam')"
    )


def test_a_hub_split_follows_the_rule():
    """Hub datasets (and IMDb) reach the same cleaning: ClassLabel names and strings alike."""
    train = Dataset.from_dict(
        {"text": ["a", "b", "c"], "label": [0, 1, 1]},
    ).cast_column("label", ClassLabel(names=["ham", "spam"]))
    test = Dataset.from_dict({"text": ["d", "e"], "label": ["ham ", "Spam"]})
    splits = {
        "train": Split(train, "someone/data, split train", "row", "text", "label"),
        "test": Split(test, "someone/data, split test", "row", "text", "label"),
    }
    with pytest.raises(DataError) as info:
        clean_splits(splits, "someone/data", DataArguments())
    assert str(info.value) == (
        "labels 'spam' (someone/data, split train, row 2) and 'Spam' (someone/data, split test, "
        "row 2) in column 'label' differ only by case; spell each class one way"
    )


# --------------------------------------------------------------------------------------------
# A full disk while the datasets cache is written
# --------------------------------------------------------------------------------------------

# In a fresh process: a map whose cache file passes a file-size limit (SIGXFSZ ignored, so the
# write fails with EFBIG), then the same map without the limit, whose cache file datasets names.
MAP_UNDER_A_LIMIT = """
import errno, json, resource, signal, sys
from datasets import Dataset
from hf_spam.data.formats import cached_map

def rows():
    for i in range(3000):
        yield {"text": f"message {i} " * 10}

def doubled(batch):
    return {"text": [text * 2 for text in batch["text"]]}

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
data = Dataset.from_generator(rows, cache_dir=sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, resource.RLIM_INFINITY))
try:
    cached_map(data, doubled, batched=True, new_fingerprint="0123456789abcdef")
except OSError as err:
    failure = [errno.errorcode[err.errno], err.filename]
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
mapped = cached_map(data, doubled, batched=True, new_fingerprint="0123456789abcdef")
print(json.dumps({"failure": failure, "written": mapped.cache_files[0]["filename"]}))
"""


def test_a_full_cache_names_the_map_file_being_written(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", MAP_UNDER_A_LIMIT, str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["failure"] == ["EFBIG", found["written"]]
    assert found["written"].startswith(str(tmp_path / "cache"))
