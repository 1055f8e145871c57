"""Plots, tables and JSON, from realistic Trainer outputs (no model needed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from hf_spam.files import write_json
from hf_spam.reporting import format_table, plot_confusion_matrix, plot_training_curves

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STEPS_PER_EPOCH = 131  # 1,045 training messages in batches of 8, as in chapter 6


def _trainer_log_history(epochs: int = 5, logging_steps: int = 50) -> list[dict]:
    """What `Trainer.state.log_history` holds after `train()` with per-epoch evaluation on the
    validation set and on the training set (`metric_key_prefix="train"`)."""
    history = []
    for epoch in range(1, epochs + 1):
        for step in range((epoch - 1) * STEPS_PER_EPOCH + 1, epoch * STEPS_PER_EPOCH + 1):
            if step % logging_steps == 0:
                history.append(
                    {
                        "loss": 1.0 / (1 + step / 100),
                        "grad_norm": 3.2,
                        "learning_rate": 5e-5 * (1 - step / (epochs * STEPS_PER_EPOCH)),
                        "epoch": step / STEPS_PER_EPOCH,
                        "step": step,
                    }
                )
        step = epoch * STEPS_PER_EPOCH
        for prefix, accuracy in (("train", 0.80 + 0.035 * epoch), ("eval", 0.78 + 0.035 * epoch)):
            history.append(
                {
                    f"{prefix}_loss": 0.6 / epoch,
                    f"{prefix}_accuracy": accuracy,
                    f"{prefix}_f1_macro": accuracy - 0.01,
                    f"{prefix}_runtime": 2.5,
                    f"{prefix}_samples_per_second": 400.0,
                    f"{prefix}_steps_per_second": 50.0,
                    "epoch": float(epoch),
                    "step": step,
                }
            )
    history.append(
        {
            "train_runtime": 300.0,
            "train_samples_per_second": 17.4,
            "train_steps_per_second": 2.2,
            "total_flos": 1.2e14,
            "train_loss": 0.31,  # the run's mean, not a curve point
            "epoch": float(epochs),
            "step": epochs * STEPS_PER_EPOCH,
        }
    )
    return history


def _assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_training_curves_from_full_log_history(tmp_path):
    written = plot_training_curves(_trainer_log_history(), tmp_path, examples_per_step=8)
    assert written == [tmp_path / "loss-plot.png", tmp_path / "accuracy-plot.png"]
    for path in written:
        _assert_png(path)


@pytest.mark.parametrize(
    ("keep", "expected"),
    [
        (lambda entry: "eval_loss" in entry, ["loss-plot.png", "accuracy-plot.png"]),
        (lambda entry: "loss" in entry, ["loss-plot.png"]),
        (lambda entry: "total_flos" in entry, []),
        (lambda entry: False, []),
    ],
    ids=["only-eval", "only-train-loss", "only-summary", "empty"],
)
def test_training_curves_with_partial_logs(tmp_path, keep, expected):
    history = [entry for entry in _trainer_log_history(epochs=2) if keep(entry)]
    written = plot_training_curves(history, tmp_path / "plots")
    assert [path.name for path in written] == expected
    for path in written:
        _assert_png(path)


def test_single_evaluation_still_plots(tmp_path):
    history = [{"eval_loss": 0.4, "eval_accuracy": 0.9, "epoch": 1.0, "step": 10}]
    for path in plot_training_curves(history, tmp_path, examples_per_step=4):
        _assert_png(path)


def test_confusion_matrix_plot(tmp_path):
    path = plot_confusion_matrix(
        np.array([[143, 7], [6, 144]]), ["ham", "spam"], tmp_path / "cm.png"
    )
    _assert_png(path)
    three = plot_confusion_matrix(
        [[5, 0, 1], [0, 0, 0], [2, 1, 9]], ["neg", "neutral", "positive"], tmp_path / "c3.png"
    )
    _assert_png(three)
    with pytest.raises(ValueError, match="does not match"):
        plot_confusion_matrix([[1, 2], [3, 4]], ["a", "b", "c"], tmp_path / "bad.png")


def test_format_table_plain_and_markdown():
    rows = [
        {"split": "train", "accuracy": 0.97211, "loss": 0.0812, "examples": 1045},
        {"split": "test", "accuracy": np.float32(0.9567), "examples": np.int64(300), "lr": 5e-5},
    ]
    plain = format_table(rows).splitlines()
    assert plain[0].split() == ["split", "accuracy", "loss", "examples", "lr"]
    assert plain[2].split() == ["train", "0.9721", "0.0812", "1045"]
    assert plain[3].split() == ["test", "0.9567", "300", "5e-05"]
    assert len({len(line) for line in plain[:2]}) == 1  # header and rule aligned

    markdown = format_table(rows, markdown=True).splitlines()
    assert markdown[0].startswith("| split") and markdown[0].endswith("|")
    assert re.fullmatch(r"\| -+ \| -+: \| -+: \| -+: \| -+: \|", markdown[1])
    assert len({len(line) for line in markdown}) == 1
    assert format_table([]) == ""


def test_write_json_is_atomic_and_handles_numpy(tmp_path):
    path = write_json(
        tmp_path / "run" / "metrics.json",
        {
            "accuracy": np.float64(0.9),
            "confusion_matrix": np.array([[1, 2], [3, 4]]),
            "dir": tmp_path,
        },
    )
    assert json.loads(path.read_text()) == {
        "accuracy": 0.9,
        "confusion_matrix": [[1, 2], [3, 4]],
        "dir": str(tmp_path),
    }
    with pytest.raises(TypeError):
        write_json(path, {"bad": object()})
    assert json.loads(path.read_text())["accuracy"] == 0.9  # the old file survived
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]  # no temp files left
