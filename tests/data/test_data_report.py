"""Tests of the data report and of saving a prepared data set."""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest
from helpers import three_class_frame, write_frame

from hf_spam.data import DataArguments, format_report, prepare_data, save_dataset_to_disk


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
