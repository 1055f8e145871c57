"""End-to-end tests of `hf-spam prepare-data` (scripts/prepare_data.py), run in-process."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import datasets
import pytest

from hf_spam.cli import main


@pytest.fixture(scope="module")
def script():
    return SimpleNamespace(main=lambda argv: main(["prepare-data", *argv]))


def test_prints_the_summary_and_saves(
    script, sms_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture, tiktoken_available: None
) -> None:
    out = tmp_path / "prepared"
    argv = ["--dataset", str(sms_file), "--padding", "longest_train", "--save_to_disk", str(out)]
    argv += ["--data_cache_dir", str(tmp_path / "cache")]
    assert script.main(argv) == 0
    printed = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in printed.splitlines() if line.strip()}
    assert rows["split"][:4] == ["split", "ham", "spam", "total"]
    assert [int(rows[split][3]) for split in ("train", "validation", "test")] == [1045, 149, 300]
    assert int(rows["train"][1]) + int(rows["validation"][1]) + int(rows["test"][1]) == 747
    assert "Rows read: 5572" in printed and "split: book" in printed  # the book's parse
    assert "test in train" in printed
    saved = datasets.load_from_disk(str(out))
    assert {split: ds.num_rows for split, ds in saved.items()} == {
        "train": 1045,
        "validation": 149,
        "test": 300,
    }
    assert saved["train"].features["label"].names == ["ham", "spam"]


def test_refuses_a_non_empty_target_before_any_work(
    script, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "prepared"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    argv = ["--dataset", str(tmp_path / "missing.csv"), "--save_to_disk", str(out)]
    assert script.main(argv) == 2  # OutputExistsError: bad usage, found before the data is read
    err = capsys.readouterr().err
    assert "exists and is not empty; pass --overwrite" in err and err.count("\n") == 1
    assert (out / "keep.txt").read_text() == "mine"


def test_bad_input_is_reported_without_traceback(
    script, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / "SMSSpamCollection"
    path.write_text("ham\tfine\nspam without a tab\n")
    out = tmp_path / "prepared"
    argv = ["--dataset", str(path), "--save_to_disk", str(out), "--data_cache_dir", str(tmp_path)]
    assert script.main(argv) == 1
    assert "SMSSpamCollection, line 2: no tab found" in capsys.readouterr().err
    assert not out.exists()
