"""hf-spam evaluate (scripts/evaluate_model.py) and hf_spam.evaluation.report: the three reports, numbers that agree with
scikit-learn on the same predictions, the SMS test split, --errors, --compare and bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import ROOT, random_model, trained_model, write_spam_fixture
from sklearn import metrics as skm

from hf_spam.cli import main
from hf_spam.inference.load import classify, load_classifier

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def model_dir(spam_csv, tmp_path_factory):
    return trained_model(tmp_path_factory, spam_csv)


@pytest.fixture(scope="module")
def noisy_csv(spam_csv, tmp_path_factory) -> Path:
    """The training fixture's texts with every 7th label flipped: confident mistakes."""
    path = write_spam_fixture(tmp_path_factory.mktemp("noisy") / "noisy.csv", rows=60, seed=1)
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    for i, row in enumerate(rows):
        if i % 7 == 0:
            row["label"] = "ham" if row["label"] == "spam" else "spam"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def _run(*argv: str) -> int:
    return main(["evaluate", *(str(arg) for arg in argv)])


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_reports_agree_with_scikit_learn(model_dir, noisy_csv, tmp_path, capsys):
    out = tmp_path / "eval"
    argv = [
        "--model",
        model_dir,
        "--dataset",
        noisy_csv,
        "--eval_split",
        "all",
        "--output_dir",
        out,
    ]
    assert _run(*argv, "--errors", "3") == 0
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "Most confident mistakes" in printed

    report = json.loads((out / "eval_report.json").read_text())
    assert report["data"]["num_examples"] == 60
    assert report["data"]["split"] == "all" and str(noisy_csv) in report["data"]["source"]
    [result] = report["models"]
    predictions = _read_jsonl(out / "predictions.jsonl")
    rows = list(csv.DictReader(noisy_csv.open(encoding="utf-8")))
    assert [p["text"] for p in predictions] == [row["text"] for row in rows]
    y_true = [row["label"] for row in rows]
    y_pred = [p["label"] for p in predictions]
    assert [p["reference"] for p in predictions] == y_true

    # The report's numbers are scikit-learn's on the same predictions...
    labels = ["ham", "spam"]
    m = result["metrics"]
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    for average in ("macro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0
        )
        assert (m[f"precision_{average}"], m[f"recall_{average}"], m[f"f1_{average}"]) == (
            pytest.approx(p),
            pytest.approx(r),
            pytest.approx(f),
        )
    p, r, f, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    for i, label in enumerate(labels):
        assert m[f"precision_{label}"] == pytest.approx(p[i])
        assert m[f"recall_{label}"] == pytest.approx(r[i])
        assert m[f"f1_{label}"] == pytest.approx(f[i])
        assert m[f"support_{label}"] == support[i]
    assert (
        result["confusion_matrix"] == skm.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    )
    # ... and the predictions are the pipeline's.
    direct = classify(load_classifier(model_dir), [row["text"] for row in rows])
    assert [d.label for d in direct] == y_pred
    assert [d.score for d in direct] == pytest.approx([p["score"] for p in predictions], abs=1e-5)

    # The most confident mistakes: wrong, best first, and none more confident left out.
    errors = result["most_confident_errors"]
    assert len(errors) == 3
    assert all(e["label"] != e["predicted"] for e in errors)
    scores = [e["score"] for e in errors]
    assert scores == sorted(scores, reverse=True)
    wrong = [p["score"] for p, t in zip(predictions, y_true, strict=True) if p["label"] != t]
    assert scores == sorted(wrong, reverse=True)[:3]

    markdown = (out / "eval_report.md").read_text()
    for expected in ("# Evaluation report", str(noisy_csv), "Examples:** 60", "### Per class"):
        assert expected in markdown
    assert "| true \\ predicted | ham | spam |" in markdown
    assert "3 most confident mistakes" in markdown and errors[0]["predicted"] in markdown
    assert (out / "confusion-matrix.png").read_bytes()[:8] == PNG_SIGNATURE


def test_sms_test_split_is_the_training_split(model_dir, sms_file, tmp_path, capsys):
    out = tmp_path / "eval"
    assert _run("--model", model_dir, "--dataset", sms_file, "--output_dir", out) == 0
    data = json.loads((out / "eval_report.json").read_text())["data"]
    # Chapter 6: 747 spam + 747 ham, 70/10/20 with seed 123 -> 300 test messages.
    assert data["num_examples"] == 300 and data["split"] == "test"
    assert "SMSSpamCollection" in data["source"] and "seed 123" in data["source"]
    assert sum(data["class_counts"].values()) == 300
    assert "300 texts" in capsys.readouterr().out


def test_compare_puts_two_models_side_by_side(model_dir, spam_csv, tmp_path):
    other = random_model(tmp_path / "untrained")
    out = tmp_path / "eval"
    argv = ["--model", model_dir, "--compare", other, "--dataset", spam_csv, "--eval_split", "all"]
    assert _run(*argv, "--output_dir", out) == 0
    report = json.loads((out / "eval_report.json").read_text())
    assert [m["model"] for m in report["models"]] == [str(model_dir), str(other)]
    first, second = (
        _read_jsonl(out / name) for name in ("predictions.jsonl", "predictions-2.jsonl")
    )
    differ = sum(a["label"] != b["label"] for a, b in zip(first, second, strict=True))
    assert report["disagreements_with_first"] == [differ]
    assert (out / "confusion-matrix-2.png").is_file()
    markdown = (out / "eval_report.md").read_text()
    summary = markdown.split("## Summary")[1].split("\n## ")[0]
    assert str(model_dir) in summary and str(other) in summary
    assert f"disagree on {differ} of 160 texts" in summary


def test_bad_input_says_what_is_missing(model_dir, spam_csv, tmp_path, capsys):
    def error(*argv) -> str:
        out = tmp_path / "never"
        assert _run(*argv, "--output_dir", out) == 1
        assert not out.exists()
        return capsys.readouterr().err

    data = ["--dataset", spam_csv, "--eval_split", "all"]
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (no_weights / name).write_bytes((model_dir / name).read_bytes())
    assert "missing model.safetensors" in error("--model", no_weights, *data)
    (no_weights / "model.safetensors").write_bytes((model_dir / "model.safetensors").read_bytes())
    (no_weights / "config.json").unlink()
    assert "missing config.json" in error("--model", no_weights, *data)

    message = error("--model", "nobody/no-such-model", *data)
    assert "'nobody/no-such-model' is neither a local model folder nor a model reachable" in message

    bad_columns = tmp_path / "messages.csv"
    bad_columns.write_text("body,label\nhello,ham\nfree prize,spam\n")
    assert "no column 'text' (found 'body', 'label')" in error(
        "--model", model_dir, "--dataset", bad_columns, "--eval_split", "all"
    )
    unknown_label = tmp_path / "phish.csv"
    unknown_label.write_text("text,label\nhello,ham\nclick here,phish\n")
    message = error("--model", model_dir, "--dataset", unknown_label, "--eval_split", "all")
    assert "unknown label 'phish'" in message and "expected one of ham, spam" in message

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    assert _run("--model", model_dir, *data, "--output_dir", busy) == 2  # before any work
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]


def test_script_does_not_shadow_the_evaluate_library():
    """Python puts scripts/ first on sys.path for every script there, so no script may be named
    evaluate.py: `import evaluate` must give the library to every script, with no path trick."""
    scripts = ROOT / "scripts"
    assert not (scripts / "evaluate.py").exists()
    code = textwrap.dedent(
        f"""
        import runpy, sys
        sys.path.insert(0, {str(scripts)!r})  # as for `python scripts/train.py`
        import evaluate
        print(evaluate.evaluator.__module__)
        sys.argv = ["evaluate_model.py", "--help"]
        runpy.run_path({str(scripts / "evaluate_model.py")!r}, run_name="__main__")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("evaluate.")  # the library's function
    for flag in ("--model", "--compare", "--errors", "--eval_split", "--dataset", "--text_column"):
        assert flag in result.stdout
