"""hf_spam.hub.summary: the scores beside the demo, from all_results.json, else the card's
model-index (what a Hub repo has), and which class an explanation is about."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import trained_model

from hf_spam.hub.summary import read_model_summary, target_label


@pytest.fixture(scope="module")
def model_dir(spam_csv, tmp_path_factory) -> Path:
    return trained_model(tmp_path_factory, spam_csv)


def test_target_label():
    assert target_label(["ham", "spam"]) == "spam"
    assert target_label(["SPAM", "ham"]) == "SPAM"
    assert target_label(["negative", "positive"]) == "positive"


def test_summary_from_results_then_from_the_card(model_dir, tmp_path):
    results = json.loads((model_dir / "all_results.json").read_text())
    summary = read_model_summary(str(model_dir), ["ham", "spam"])
    assert summary.metrics == {
        "Test accuracy": pytest.approx(results["test_accuracy"]),
        "Test F1 (macro)": pytest.approx(results["test_f1_macro"]),
        "Test F1 (spam)": pytest.approx(results["test_f1_spam"]),
    }
    assert summary.confusion_matrix == model_dir / "confusion-matrix.png"
    assert f"| Test accuracy | {results['test_accuracy']:.4f} |" in summary.markdown()

    # What a Hub repo has: the card's model-index, no all_results.json.
    card_only = tmp_path / "card-only"
    card_only.mkdir()
    shutil.copy(model_dir / "README.md", card_only / "README.md")
    summary = read_model_summary(str(card_only), ["ham", "spam"])
    assert summary.metrics == {
        "Test Accuracy": round(results["test_accuracy"], 4),
        "Test F1 (macro)": round(results["test_f1_macro"], 4),
    }
    assert summary.confusion_matrix is None
    assert read_model_summary(str(tmp_path / "empty-dir-or-id"), ["ham", "spam"]).metrics == {}
