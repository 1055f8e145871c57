"""The operating-point figures (hf_spam.evaluation.scores) against hand computations, and the
operating point itself (hf_spam.inference.decision): temperature and threshold applied by the
bulk path, the pipeline wrapper and evaluate, while pipeline() keeps the model's probabilities."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from helpers import random_model, trained_model

from hf_spam.cli import main
from hf_spam.evaluation.scores import (
    binary_rates,
    expected_calibration_error,
    operating_point_metrics,
)
from hf_spam.inference.bulk import classify_bulk
from hf_spam.inference.decision import OperatingPoint
from hf_spam.inference.load import classify, load_classifier

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------------------------
# Figures, by hand
# --------------------------------------------------------------------------------------------


def test_ece_matches_a_hand_computation():
    # Confidences 0.9, 0.88 (same 15th-bin (13/15, 14/15]), 0.81, 0.7, 0.55: away from edges.
    probabilities = [[0.9, 0.1], [0.88, 0.12], [0.19, 0.81], [0.3, 0.7], [0.45, 0.55]]
    references = [0, 0, 0, 1, 0]
    # argmax 0, 0, 1, 1, 1 -> correct 1, 1, 0, 1, 0
    by_hand = (
        2 / 5 * abs(1.0 - (0.9 + 0.88) / 2)  # bin (0.8667, 0.9333]: both correct
        + 1 / 5 * abs(0.0 - 0.81)
        + 1 / 5 * abs(1.0 - 0.7)
        + 1 / 5 * abs(0.0 - 0.55)
    )
    assert expected_calibration_error(references, probabilities) == pytest.approx(by_hand)


def test_ece_bins_are_closed_on_the_right():
    # Two bins, [0, 0.5] and (0.5, 1]; a confidence of exactly 0.5 falls in the first.
    probabilities = [[0.5, 0.5], [0.4, 0.6], [0.2, 0.8]]
    references = [0, 0, 1]  # correct 1, 0, 1
    by_hand = 1 / 3 * abs(1 - 0.5) + 2 / 3 * abs(0.5 - 0.7)
    assert expected_calibration_error(references, probabilities, n_bins=2) == pytest.approx(by_hand)


def _pairwise_auc(references, scores):
    """ROC AUC as the Mann-Whitney statistic: P(score of a positive > a negative's), ties 1/2."""
    positives = [s for s, y in zip(scores, references, strict=True) if y == 1]
    negatives = [s for s, y in zip(scores, references, strict=True) if y == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def test_binary_figures_match_hand_formulas():
    rng = np.random.default_rng(0)
    references = rng.integers(0, 2, 200)
    positive = np.clip(0.3 * references + rng.uniform(0, 0.7, 200), 0, 1)
    probabilities = np.stack([1 - positive, positive], axis=1)
    predicted = (positive >= 0.6).astype(int)
    figures = operating_point_metrics(references, probabilities, predicted, 0.6)

    tp = int(((predicted == 1) & (references == 1)).sum())
    fp = int(((predicted == 1) & (references == 0)).sum())
    fn = int(((predicted == 0) & (references == 1)).sum())
    tn = int(((predicted == 0) & (references == 0)).sum())
    mcc = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert figures["decision_threshold"] == 0.6
    assert figures["precision"] == pytest.approx(tp / (tp + fp))
    assert figures["recall"] == pytest.approx(tp / (tp + fn))
    assert figures["false_positive_rate"] == pytest.approx(fp / (fp + tn))
    assert figures["mcc"] == pytest.approx(mcc)
    assert figures["roc_auc"] == pytest.approx(_pairwise_auc(references, positive))
    # Average precision: the mean of the precision at each positive's rank (no ties here).
    order = np.argsort(-positive)
    hits = references[order]
    precision_at = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    assert figures["pr_auc"] == pytest.approx(precision_at[hits == 1].mean())


def test_undefined_figures_are_none_and_rates_zero():
    figures = operating_point_metrics([0, 0], [[0.2, 0.8], [0.6, 0.4]], [1, 0])
    assert figures["roc_auc"] is None and figures["pr_auc"] is None
    # Only positives: no ROC curve, but precision is 1 at every threshold.
    figures = operating_point_metrics([1, 1], [[0.2, 0.8], [0.6, 0.4]], [1, 0])
    assert figures["roc_auc"] is None and figures["pr_auc"] == 1.0
    assert binary_rates([0, 0], [0, 0]) == {
        "precision": 0.0,
        "recall": 0.0,
        "false_positive_rate": 0.0,
    }


def test_three_classes_get_one_vs_rest_aucs_and_no_binary_rates():
    probabilities = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.3, 0.2]]
    figures = operating_point_metrics([0, 1, 2, 1], probabilities, [0, 1, 2, 0])
    assert "precision" not in figures and "false_positive_rate" not in figures
    columns = np.asarray(probabilities).T
    by_hand = np.mean(
        [_pairwise_auc([int(y == c) for y in (0, 1, 2, 1)], columns[c]) for c in range(3)]
    )
    assert figures["roc_auc"] == pytest.approx(by_hand)


# --------------------------------------------------------------------------------------------
# The operating point
# --------------------------------------------------------------------------------------------


def test_rescaled_probabilities_are_the_softmax_of_scaled_logits():
    logits = torch.tensor([2.0, -1.0, 0.5])
    point = OperatingPoint(temperature=2.5)
    expected = torch.softmax(logits / 2.5, -1).tolist()
    assert point.rescale(torch.softmax(logits, -1).tolist()) == pytest.approx(expected)
    assert point.probabilities(logits).tolist() == pytest.approx(expected)


def test_threshold_decides_label_one_at_or_above_it():
    point = OperatingPoint(threshold=0.3)
    assert point.choose([0.7, 0.3]) == 1 and point.choose([0.71, 0.29]) == 0
    scores = torch.tensor([[0.7, 0.3], [0.71, 0.29], [0.1, 0.9]])
    chosen, chosen_scores = point.choose_rows(scores)
    assert chosen.tolist() == [1, 0, 1]
    assert chosen_scores.tolist() == pytest.approx([0.3, 0.71, 0.9])
    output = point.decide_output([{"label": "ham", "score": 0.7}, {"label": "spam", "score": 0.3}],
                                 ["ham", "spam"])  # fmt: skip
    assert output[0] == {"label": "spam", "score": pytest.approx(0.3)}


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """A random binary classifier whose config.json holds a temperature and a threshold."""
    folder = random_model(tmp_path_factory.mktemp("point") / "model", seed=3)
    config = json.loads((folder / "config.json").read_text())
    config.update(temperature=0.05, decision_threshold=0.4)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


TEXTS = ["WIN a free prize now", "see you at dinner", "", "call me later ok", "URGENT cash"]


def test_bulk_and_classify_apply_it_and_pipeline_does_not(calibrated):
    classifier = load_classifier(calibrated, device="cpu")
    model, tokenizer = classifier.model, classifier.tokenizer
    raw = [
        {item["label"]: item["score"] for item in out}
        for out in classifier(TEXTS, top_k=None, truncation=True)
    ]
    with torch.inference_mode():
        logits = []
        for text in TEXTS:
            ids = tokenizer(text, return_tensors="pt")["input_ids"]
            if ids.shape[1] == 0:
                ids = torch.tensor([[model.config.eos_token_id]])
            logits.append(model(input_ids=ids).logits[0])
    # pipeline(): the model's own probabilities, untouched by config.json's values.
    for scores, row in zip(raw, logits, strict=True):
        assert [scores["ham"], scores["spam"]] == pytest.approx(row.softmax(-1).tolist(), abs=1e-5)
    expected = [torch.softmax(row / 0.05, -1) for row in logits]
    labels = ["spam" if p[1] >= 0.4 else "ham" for p in expected]
    for predictions in (list(classify_bulk(model, tokenizer, TEXTS)), classify(classifier, TEXTS)):
        assert [p.label for p in predictions] == labels
        for prediction, probabilities in zip(predictions, expected, strict=True):
            assert [prediction.scores["ham"], prediction.scores["spam"]] == pytest.approx(
                probabilities.tolist(), abs=1e-4
            )
            assert prediction.score == pytest.approx(prediction.scores[prediction.label])
    plain = list(classify_bulk(model, tokenizer, TEXTS, point=OperatingPoint()))
    for prediction, scores in zip(plain, raw, strict=True):
        assert prediction.scores == pytest.approx(scores, abs=1e-5)


def test_evaluate_reports_the_operating_point(spam_csv, tmp_path_factory, tmp_path):
    folder = tmp_path / "model"
    import shutil

    shutil.copytree(trained_model(tmp_path_factory, spam_csv), folder)
    config = json.loads((folder / "config.json").read_text())
    config["decision_threshold"] = 0.9
    (folder / "config.json").write_text(json.dumps(config))
    out = tmp_path / "eval"
    argv = ["evaluate", "--model", folder, "--dataset", spam_csv, "--eval_split", "all"]
    assert main([str(a) for a in [*argv, "--output_dir", out]]) == 0
    [result] = json.loads((out / "eval_report.json").read_text())["models"]
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert all((row["label"] == "spam") == (row["scores"]["spam"] >= 0.9) for row in rows)
    truth = np.array([row["reference"] == "spam" for row in rows])
    said = np.array([row["label"] == "spam" for row in rows])
    figures = result["operating_point"]
    assert figures["decision_threshold"] == 0.9
    assert figures["recall"] == pytest.approx((truth & said).sum() / truth.sum())
    assert figures["false_positive_rate"] == pytest.approx((~truth & said).sum() / (~truth).sum())
    accuracy = float((truth == said).mean())
    assert result["metrics"]["accuracy"] == pytest.approx(accuracy)
    for name in ("roc-curve.png", "precision-recall-curve.png"):
        assert (out / name).read_bytes()[:8] == PNG_SIGNATURE
    markdown = (out / "eval_report.md").read_text()
    assert "## Operating point" in markdown and "threshold 0.9" in markdown
