"""Plots, tables, JSON and the model card, from realistic Trainer outputs (no model needed)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from huggingface_hub import ModelCard

from hf_spam.files import write_json
from hf_spam.reporting import (
    DEFAULT_MODEL_CARD_TEMPLATE,
    build_card_data,
    format_table,
    plot_confusion_matrix,
    plot_training_curves,
    render_model_card,
)

ROOT = Path(__file__).resolve().parents[1]
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


def _full_context() -> dict:
    return {
        "repo_id": "alice/gpt2-small-sms-spam",
        "model_size": "124M",
        "labels": {"0": "ham", "1": "spam"},
        "data_description": "Ham undersampled to the 747 spam messages; 70/10/20 random split.",
        "split_sizes": {"train": 1045, "validation": 149, "test": 300},
        "train_test_overlap": 4,
        "max_length": 120,
        "trainable_layers": "last transformer block, final LayerNorm, classification head",
        "trainable_parameters": 7_090_946,
        "total_parameters": 124_441_346,
        "hyperparameters": {"learning_rate": 5e-5, "weight_decay": 0.1, "num_train_epochs": 5},
        "seed": 123,
        "results": {
            "train": {"train_loss": 0.08, "train_accuracy": 0.9721, "train_f1_macro": 0.972},
            "validation": {"eval_accuracy": 0.9732, "eval_f1_macro": 0.9731},
            "test": {
                "test_accuracy": 0.9567,
                "test_f1_macro": 0.9566,
                "test_precision_macro": 0.9571,
                "test_recall_macro": 0.9567,
                "test_precision_ham": 0.96,
                "test_precision_spam": 0.9542,
                "test_support_ham": 150,
                "test_support_spam": 150,
            },
        },
        "confusion_matrix": [[143, 7], [6, 144]],
        "plots": ["loss-plot.png", "accuracy-plot.png"],
    }


def _front_matter(text: str) -> dict:
    match = re.match(r"---\n(.*?)\n---\n", text, flags=re.DOTALL)
    assert match, text[:200]
    return yaml.safe_load(match.group(1))


def _assert_rendered(text: str) -> None:
    for syntax in ("{{", "}}", "{%", "%}", "{#", "#}"):
        assert syntax not in text
    assert "None" not in text


def test_model_card_renders_with_model_index(tmp_path):
    path = render_model_card(
        ROOT / "model_card.md", tmp_path / "README.md", context=_full_context()
    )
    text = path.read_text()
    _assert_rendered(text)

    metadata = _front_matter(text)
    assert metadata["license"] == "mit"
    assert metadata["base_model"] == "openai-community/gpt2"
    assert metadata["datasets"] == ["ucirvine/sms_spam"]
    assert metadata["pipeline_tag"] == "text-classification"
    assert metadata["library_name"] == "transformers"
    [entry] = metadata["model-index"]
    assert entry["name"] == "gpt2-small-sms-spam"
    by_split = {result["dataset"]["split"]: result for result in entry["results"]}
    assert set(by_split) == {"validation", "test"}  # training scores are not an evaluation
    test_metrics = {metric["type"]: metric["value"] for metric in by_split["test"]["metrics"]}
    assert test_metrics == {"accuracy": 0.9567, "f1": 0.9566, "precision": 0.9571, "recall": 0.9567}
    assert by_split["test"]["task"]["type"] == "text-classification"
    assert by_split["test"]["dataset"]["type"] == "ucirvine/sms_spam"

    card = ModelCard.load(path)
    eval_results = {
        (r.dataset_split, r.metric_type): r.metric_value for r in card.data.eval_results
    }
    assert eval_results[("test", "accuracy")] == 0.9567
    assert eval_results[("validation", "f1")] == 0.9731

    # The usage snippet is valid Python that names the repository.
    snippet = re.search(r"```python\n(.*?)```", text, flags=re.DOTALL).group(1)
    ast.parse(snippet)
    assert 'model="alice/gpt2-small-sms-spam"' in snippet and "trust_remote_code=True" in snippet
    for expected in (
        "ham or spam",
        "7,090,946 of",
        "| spam             |   6 |  144 |",
        "4\n  validation/test texts also occur in the training data",
        "![loss-plot.png](loss-plot.png)",
        "978-1633437166",
        "DocEng 2011",
        "Language Models are Unsupervised Multitask Learners",
    ):
        assert expected in text


def test_model_card_with_empty_context_uses_defaults(tmp_path):
    path = render_model_card(None, tmp_path / "model" / "README.md", context={})
    text = path.read_text()
    _assert_rendered(text)
    assert "n/a" in text
    assert "model-index" not in _front_matter(text)  # no results, no model-index
    assert f'model="{(tmp_path / "model").as_posix()}"' in text  # loadable from the folder
    assert ModelCard.load(path).data.base_model == "openai-community/gpt2"


def test_model_card_for_custom_dataset(tmp_path):
    context = {
        "dataset_id": None,
        "dataset_name": "Product reviews",
        "labels": ["negative", "neutral", "positive"],
        "results": {"test": {"accuracy": 0.8}},
    }
    text = render_model_card(None, tmp_path / "README.md", context=context).read_text()
    _assert_rendered(text)
    metadata = _front_matter(text)
    assert "datasets" not in metadata and "sms" not in metadata["tags"]
    dataset = metadata["model-index"][0]["results"][0]["dataset"]
    assert dataset == {"name": "Product reviews", "type": "product_reviews", "split": "test"}
    assert "negative or neutral or positive" in text and "Grumbletext" not in text


def test_model_card_refuses_unrendered_syntax(tmp_path):
    with pytest.raises(ValueError, match="Unrendered template syntax"):
        render_model_card(None, tmp_path / "README.md", context={"data_description": "{{ oops }}"})
    assert not (tmp_path / "README.md").exists()


def test_card_data_extra_tags_and_default_template():
    data = build_card_data({"tags": ["custom-tag"], "results": {"train": {"accuracy": 1.0}}})
    assert data.tags[-1] == "custom-tag"
    assert data.eval_results is None
    assert DEFAULT_MODEL_CARD_TEMPLATE.is_file()
