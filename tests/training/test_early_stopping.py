"""--early_stopping_patience / --early_stopping_threshold: what they turn on, and a tiny run that
stops early and keeps the best checkpoint, whose epoch the card states."""

from __future__ import annotations

import json

import pytest
from helpers import parse, tiny_args

from hf_spam.training.run import train


def test_patience_turns_on_the_best_checkpoint_and_matching_strategies(tmp_path):
    *_, args = parse(["--output_dir", str(tmp_path), "--early_stopping_patience", "2",
                      "--eval_strategy", "steps", "--eval_steps", "5"])  # fmt: skip
    assert args.load_best_model_at_end
    assert args.metric_for_best_model == "loss" and args.greater_is_better is False
    assert str(args.save_strategy.value) == "steps" and args.save_steps == 5
    *_, plain = parse(["--output_dir", str(tmp_path)])
    assert not plain.load_best_model_at_end  # nothing changes without the flag


def test_a_tiny_run_stops_early_and_keeps_the_best_epoch(spam_csv, tmp_path):
    out = tmp_path / "run"
    # No improvement is ever large enough: the run stops after patience + 1 evaluations.
    argv = tiny_args(spam_csv, out, "--num_train_epochs", "5", "--early_stopping_patience", "1",
                     "--early_stopping_threshold", "1e9", "--max_train_samples", "32",
                     "--eval_on_train", "false", "--report_to", "none")  # fmt: skip
    result = train(*parse(argv))
    state = json.loads((out / "trainer_state.json").read_text())
    evaluations = {e["epoch"]: e["eval_loss"] for e in state["log_history"] if "eval_loss" in e}
    assert sorted(evaluations) == [1.0, 2.0]  # stopped after epoch 2 of 5
    best = min(evaluations, key=evaluations.get)
    card = json.loads((out / "card_context.json").read_text())
    assert card["best_epoch"] == best
    assert f"saved at epoch {best:g} (early stopping)" in (out / "README.md").read_text()
    # The folder holds the best checkpoint's model: its validation loss is that evaluation's.
    assert result.metrics["validation_loss"] == pytest.approx(evaluations[best], rel=1e-5)
    assert "patience 1" in card["hyperparameters"]["early_stopping"]
