"""--class_weights (hf_spam.training.class_weights): the balanced weights by hand, the weighted
training loss against a hand-computed one, the same weighted training with and without the
frozen-trunk cache, evaluation losses left unweighted, the card, and the whole SMS collection
with --no_balance."""

from __future__ import annotations

import json
import math

import pytest
import torch
from helpers import SMS_FILE, parse, tiny_args, tiny_classifier
from safetensors.torch import load_file

from hf_spam.data import load_splits
from hf_spam.training.class_weights import resolve_class_weights
from hf_spam.training.model_arguments import TrainingSetupError
from hf_spam.training.run import SpamTrainingArguments, train
from hf_spam.training.trainer import SpamTrainer


def test_balanced_weights_are_n_over_classes_times_count():
    labels = [0, 0, 0, 1, 0, 2, 2, 0]  # counts 5, 1, 2
    assert resolve_class_weights("balanced", labels, 3) == pytest.approx(
        [8 / (3 * 5), 8 / (3 * 1), 8 / (3 * 2)]
    )
    assert resolve_class_weights("1.0,3.5", labels[:4], 2) == [1.0, 3.5]
    assert resolve_class_weights(None, labels, 3) is None
    with pytest.raises(TrainingSetupError, match="label id\\(s\\) \\[2\\] have no training text"):
        resolve_class_weights("balanced", [0, 1, 1], 3)


def test_weighted_loss_matches_a_hand_computation(tmp_path):
    model = tiny_classifier()
    weights = [0.4, 2.5]
    args = SpamTrainingArguments(output_dir=str(tmp_path), eval_strategy="no", report_to="none")
    trainer = SpamTrainer(model=model, args=args, class_weights=weights)
    input_ids = torch.randint(0, 100, (5, 7))
    labels = torch.tensor([0, 1, 1, 0, 1])
    inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
    with torch.no_grad():
        logits = model(**inputs).logits.double()
    numerator = denominator = 0.0
    for row, label in zip(logits, labels.tolist(), strict=True):
        log_probability = row[label] - math.log(sum(math.exp(v) for v in row.tolist()))
        numerator += weights[label] * -float(log_probability)
        denominator += weights[label]

    model.train()
    loss = trainer.compute_loss(model, {**inputs, "labels": labels})
    assert loss.item() == pytest.approx(numerator / denominator, rel=1e-5)
    model.eval()  # evaluation: the plain mean cross-entropy
    plain = trainer.compute_loss(model, {**inputs, "labels": labels})
    assert plain.item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, labels).item(), rel=1e-5
    )


def _weights_after(data, out, *extra) -> dict[str, torch.Tensor]:
    fast = ("--max_steps", "3", "--eval_strategy", "no", "--save_strategy", "no",
            "--eval_on_train", "false", "--report_to", "none")  # fmt: skip
    result = train(*parse(tiny_args(data, out, *fast, *extra)))
    return {"result": result, **load_file(out / "model.safetensors")}


def test_cache_and_plain_paths_train_the_same_weighted_loss(spam_csv, tmp_path):
    weighted = ("--class_weights", "1.0,6.0")
    cached = _weights_after(
        spam_csv, tmp_path / "cached", *weighted, "--frozen_trunk_cache", "true"
    )
    plain = _weights_after(spam_csv, tmp_path / "plain", *weighted, "--frozen_trunk_cache", "false")
    unweighted = _weights_after(spam_csv, tmp_path / "none", "--frozen_trunk_cache", "false")
    assert cached["result"].trunk_store is not None and plain["result"].trunk_store is None
    head = "out_head.weight"
    torch.testing.assert_close(cached[head], plain[head], rtol=0, atol=1e-5)
    assert not torch.allclose(plain[head], unweighted[head], atol=1e-4)  # the weights count

    card = json.loads((tmp_path / "plain" / "card_context.json").read_text())
    assert card["class_weights"] == [1.0, 6.0]
    assert card["hyperparameters"]["class_weights"] == "1.0,6.0 (1, 6)"
    assert "Class weights of the loss:** 1.0, 6.0" in (tmp_path / "plain" / "README.md").read_text()


def test_no_balance_keeps_every_sms_text(tmp_path):
    _, data_args, _ = parse(["--dataset", str(SMS_FILE), "--no_balance", "--output_dir",
                             str(tmp_path / "x"), "--class_weights", "balanced"])  # fmt: skip
    splits, _ = load_splits(data_args)
    assert sum(len(split) for split in splits.values()) == 5574
    labels = splits["train"]["label"]
    ham, spam = labels.count(0), labels.count(1)
    assert resolve_class_weights("balanced", labels, 2) == pytest.approx(
        [len(labels) / (2 * ham), len(labels) / (2 * spam)]
    )
