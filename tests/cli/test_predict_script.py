"""hf-spam predict (scripts/predict.py): texts from arguments, stdin and files; table, JSON lines and CSV output;
a progress bar on large inputs; clear errors; and --help of every use/share script."""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import fields

import pytest
from helpers import trained_model

from hf_spam.cli import main
from hf_spam.cli.evaluate import EvaluateArguments
from hf_spam.cli.predict import PredictArguments
from hf_spam.cli.push import PushArguments
from hf_spam.data import DataArguments
from hf_spam.inference.load import InferenceArguments


class predict:  # noqa: N801 - reads as the command it runs
    @staticmethod
    def main(argv: list[str]) -> int:
        return main(["predict", *argv])


@pytest.fixture(scope="module")
def model_dir(spam_csv, tmp_path_factory):
    return trained_model(tmp_path_factory, spam_csv)


def _table_rows(printed: str) -> list[list[str]]:
    """Rows of the printed table (label, score, text), without the header and rule."""
    lines = [line for line in printed.splitlines() if line.strip()]
    header = lines.index(next(line for line in lines if line.startswith("label")))
    return [line.split(None, 2) for line in lines[header + 2 :]]


def test_texts_from_arguments(model_dir, capsys):
    argv = ["--model", str(model_dir), "WIN a free prize call now", "see you at home later mum"]
    assert predict.main(argv) == 0
    rows = _table_rows(capsys.readouterr().out)
    assert [row[0] for row in rows] == ["spam", "ham"]
    assert all(0.5 <= float(row[1]) <= 1.0 for row in rows)
    assert rows[0][2] == "WIN a free prize call now"


def test_texts_from_stdin(model_dir, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("free prize call now\n\nsee you later mum\n"))
    assert predict.main(["--model", str(model_dir)]) == 0
    rows = _table_rows(capsys.readouterr().out)
    assert [row[2] for row in rows] == ["free prize call now", "see you later mum"]


def test_texts_from_files_to_jsonl_and_csv(model_dir, spam_csv, tmp_path, capsys):
    out = tmp_path / "predictions.jsonl"
    assert (
        predict.main(["--model", str(model_dir), "--input", str(spam_csv), "--output", str(out)])
        == 0
    )
    captured = capsys.readouterr()
    assert "Wrote 160 predictions" in captured.out
    assert "Classifying" in captured.err  # 160 texts: a progress bar
    records = [json.loads(line) for line in out.read_text().splitlines()]
    texts = [row["text"] for row in csv.DictReader(spam_csv.open())]
    assert [r["text"] for r in records] == texts
    assert set(records[0]) == {"text", "label", "score", "scores"}
    assert all(r["score"] == max(r["scores"].values()) for r in records)

    lines = tmp_path / "messages.txt"
    lines.write_text("WIN a free prize call now\nsee you at home later mum\n")
    out_csv = tmp_path / "predictions.csv"
    argv = ["--model", str(model_dir), "--input", str(lines), "--output", str(out_csv)]
    assert predict.main(argv) == 0
    assert "Classifying" not in capsys.readouterr().err  # two texts: no bar
    rows = list(csv.DictReader(out_csv.open()))
    assert list(rows[0]) == ["text", "label", "score", "score_ham", "score_spam"]
    assert [row["label"] for row in rows] == ["spam", "ham"]

    assert predict.main(argv) == 2  # the output exists now: refused before any work
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert predict.main([*argv, "--overwrite"]) == 0


def test_csv_with_a_byte_order_mark_is_read_as_pandas_reads_it(model_dir, spam_csv, tmp_path):
    """Excel saves CSV as utf-8-sig; training reads such a file (pandas), so predict does too."""
    import pandas as pd

    bom = tmp_path / "excel.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + spam_csv.read_bytes())
    out = tmp_path / "excel.jsonl"
    assert predict.main(["--model", str(model_dir), "--input", str(bom), "--output", str(out)]) == 0
    texts = [json.loads(line)["text"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert texts == pd.read_csv(bom, keep_default_na=False)["text"].tolist()


def test_output_that_is_the_input_is_refused(model_dir, spam_csv, tmp_path, capsys, monkeypatch):
    """The same file by its path, a relative path, a symlink or a hard link: refused before any
    work (predictions are written aside and renamed onto --output, which would replace the
    input), with --overwrite too, and the input is left as it was."""
    inbox = tmp_path / "inbox.csv"
    inbox.write_bytes(spam_csv.read_bytes())
    (tmp_path / "link.csv").symlink_to(inbox)
    os.link(inbox, tmp_path / "hard.csv")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    for output in (str(inbox), "../inbox.csv", str(tmp_path / "link.csv"), "../hard.csv"):
        argv = ["--model", str(model_dir), "--input", str(inbox), "--output", output]
        assert predict.main([*argv, "--overwrite"]) == 2
        assert capsys.readouterr().err == (
            f"error: --output {output} is the --input file; write the predictions to another file\n"
        )
        assert inbox.read_bytes() == spam_csv.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "hard.csv",
        "inbox.csv",
        "link.csv",
        "sub",
    ]


def test_bad_input_says_what_is_missing(model_dir, tmp_path, capsys):
    def error(*argv: str, status: int = 1) -> str:
        assert predict.main(["--model", str(model_dir), *argv]) == status
        return capsys.readouterr().err

    table = tmp_path / "inbox.csv"
    table.write_text("id,body\n1,hello\n")
    assert "inbox.csv: no column 'text' (found 'id', 'body'); set --text_column" in error(
        "--input", str(table)
    )
    assert "inbox.csv: no column 'message'" in error(
        "--input", str(table), "--text_column", "message"
    )
    assert "file not found" in error("--input", str(tmp_path / "missing.txt"))
    assert "use a .jsonl or .csv file name" in error(
        "--output", str(tmp_path / "x.xlsx"), "hi", status=2
    )
    assert "arguments or --input, not both" in error("--input", str(table), "hi", status=2)

    assert predict.main(["--model", str(tmp_path), "hi"]) == 1
    message = capsys.readouterr().err
    assert "missing config.json" in message and "missing" in message
    assert "model.safetensors" in message
    assert predict.main(["--model", str(model_dir), "--batchsize", "3", "hi"]) == 2
    assert "--batchsize" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "dataclasses"),
    [
        ("predict", (PredictArguments, InferenceArguments)),
        ("evaluate", (EvaluateArguments, InferenceArguments, DataArguments)),
        ("push", (PushArguments,)),
    ],
)
def test_help_documents_every_option(command, dataclasses, capsys):
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: hf-spam {command}")
    for arguments in dataclasses:
        for item in fields(arguments):
            assert f"--{item.name}" in text
            assert item.metadata.get("help"), f"{command} --{item.name} has no help"
