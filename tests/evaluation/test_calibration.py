"""hf-spam calibrate (hf_spam.evaluation.calibration): the temperature against a grid search of
the validation NLL, the threshold of each goal against a brute force over every cut, and the
command end to end: the values in config.json, the folder replaced whole, the card, evaluate
agreeing with the figures it reported, a three-class model (temperature only)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from helpers import random_model, three_class_frame, trained_model, write_frame

from hf_spam.cli import main
from hf_spam.errors import UsageError
from hf_spam.evaluation.calibration import Goal, fit_temperature, fit_threshold


def _nll(logits: np.ndarray, references: np.ndarray, temperature: float) -> float:
    scaled = logits / temperature
    scaled = scaled - scaled.max(1, keepdims=True)
    log_softmax = scaled - np.log(np.exp(scaled).sum(1, keepdims=True))
    return float(-log_softmax[np.arange(len(references)), references].mean())


def test_temperature_minimises_the_nll_as_a_grid_search_does():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (400, 3))
    true_scaled = np.exp(logits / 2.0) / np.exp(logits / 2.0).sum(1, keepdims=True)
    references = np.array([rng.choice(3, p=row) for row in true_scaled])
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)

    fitted = fit_temperature(probabilities, references)
    grid = np.exp(np.linspace(np.log(0.2), np.log(10), 4001))
    best = grid[np.argmin([_nll(logits, references, t) for t in grid])]
    assert fitted == pytest.approx(best, rel=2e-3)
    assert 1.5 < fitted < 2.7  # near the temperature the labels were drawn at


def _brute_force(references, positive, goal: Goal) -> set[int]:
    """The texts predicted label 1 at the best cut 'score >= s' over every distinct score (and
    none), by the goal's definition, ties to the fewest texts flagged."""
    references, positive = np.asarray(references), np.asarray(positive)
    best, best_key = set(), None
    for cut in [np.inf, *sorted(set(positive.tolist()), reverse=True)]:
        flagged = positive >= cut
        tp = int((flagged & (references == 1)).sum())
        fp = int((flagged & (references == 0)).sum())
        fn = int((~flagged & (references == 1)).sum())
        recall = tp / max(1, (references == 1).sum())
        if goal.name == "cost_ratio":
            key = -(goal.value * fp + fn)
        elif goal.name == "target_precision":
            ok = tp + fp > 0 and tp / (tp + fp) >= goal.value
            key = recall if ok else None
        else:
            key = recall if fp / max(1, (references == 0).sum()) <= goal.value else None
        if key is not None and (best_key is None or key > best_key):
            best, best_key = set(np.flatnonzero(flagged).tolist()), key
    return best


@pytest.mark.parametrize(
    "goal",
    [Goal("target_precision", 0.9), Goal("max_false_positive_rate", 0.05),
     Goal("cost_ratio", 4.0), Goal("cost_ratio", 0.25), Goal("max_false_positive_rate", 0.0)],
    ids=["precision", "fpr", "cost-4", "cost-quarter", "fpr-0"],
)  # fmt: skip
def test_threshold_meets_each_goal_as_a_brute_force_does(goal):
    rng = np.random.default_rng(1)
    references = rng.integers(0, 2, 300)
    positive = np.clip(0.35 * references + rng.uniform(0, 0.65, 300), 0, 1).round(3)
    threshold = fit_threshold(references, positive, goal)
    assert 0 <= threshold <= 1
    assert set(np.flatnonzero(positive >= threshold).tolist()) == _brute_force(
        references, positive, goal
    )


def test_an_unreachable_goal_names_its_flag():
    with pytest.raises(UsageError, match="--target_precision 1: no threshold reaches it"):
        fit_threshold([0, 1, 0, 1], [0.9, 0.1, 0.8, 0.2], Goal("target_precision", 1.0))


# --------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------


@pytest.fixture
def model_copy(spam_csv, tmp_path_factory, tmp_path):
    folder = tmp_path / "models" / "spam"
    shutil.copytree(trained_model(tmp_path_factory, spam_csv), folder)
    return folder


def _calibrate(*argv) -> int:
    return main(["calibrate", *(str(arg) for arg in argv)])


def test_calibrate_writes_the_operating_point_and_evaluate_agrees(
    model_copy, spam_csv, tmp_path, capsys
):
    weights = (model_copy / "model.safetensors").read_bytes()
    assert _calibrate("--model", model_copy, "--dataset", spam_csv, "--cost_ratio", "3") == 0
    printed = capsys.readouterr().out
    assert "Test split" in printed and "before" in printed and "after" in printed

    config = json.loads((model_copy / "config.json").read_text())
    record = json.loads((model_copy / "calibration.json").read_text())
    assert config["temperature"] == record["temperature"] > 0
    assert config["decision_threshold"] == record["decision_threshold"]
    assert record["goal"] == {"name": "cost_ratio", "value": 3.0}
    assert record["fitted_on"] == "validation"
    assert (model_copy / "model.safetensors").read_bytes() == weights
    assert sorted(p.name for p in model_copy.parent.iterdir()) == ["spam"]  # nothing left aside

    card = (model_copy / "README.md").read_text()
    assert "Calibrated operating point" in card
    assert f"decision_threshold: {config['decision_threshold']}" in card  # model-index
    assert "decision_threshold: argmax" in card  # the training figures: argmax

    # evaluate, through pipeline() and the operating point, finds the figures calibrate reported.
    out = tmp_path / "eval"
    argv = ["evaluate", "--model", model_copy, "--dataset", spam_csv, "--output_dir", out]
    assert main([str(a) for a in argv]) == 0
    [result] = json.loads((out / "eval_report.json").read_text())["models"]
    after = record["figures"]["test"]["after"]
    for key in ("precision", "recall", "false_positive_rate", "mcc", "ece"):
        assert result["operating_point"][key] == pytest.approx(after[key], abs=1e-6), key
    assert result["metrics"]["accuracy"] == pytest.approx(after["accuracy"])


def test_dry_run_writes_nothing(model_copy, spam_csv):
    before = {p.name: p.read_bytes() for p in model_copy.iterdir() if p.is_file()}
    argv = ["--model", model_copy, "--dataset", spam_csv, "--target_precision", "0.5"]
    assert _calibrate(*argv, "--dry_run") == 0
    assert {p.name: p.read_bytes() for p in model_copy.iterdir() if p.is_file()} == before


def test_three_classes_get_a_temperature_only(tmp_path, capsys):
    data = write_frame(three_class_frame(per_class=20), tmp_path / "three.csv")
    folder = random_model(tmp_path / "three", id2label=dict(enumerate(["neg", "neu", "pos"])))
    assert _calibrate("--model", folder, "--dataset", data, "--no_balance") == 0
    config = json.loads((folder / "config.json").read_text())
    assert config["temperature"] > 0 and config["temperature"] != 1.0
    assert config["decision_threshold"] is None
    capsys.readouterr()
    assert _calibrate("--model", folder, "--dataset", data, "--target_precision", "0.9") == 2
    assert "needs a binary model (2 labels); this one has 3" in capsys.readouterr().err
