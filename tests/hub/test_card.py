"""The model card: the typed context, built from a run or a folder, and its rendering."""

from __future__ import annotations

import ast
import json
import re

import pytest
import yaml
from huggingface_hub import ModelCard

from hf_spam.hub.card import CARD_CONTEXT_FILE, CardContext, load_card_context
from hf_spam.hub.rendering import (
    DEFAULT_MODEL_CARD_TEMPLATE,
    build_card_data,
    render_model_card,
)


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
        DEFAULT_MODEL_CARD_TEMPLATE, tmp_path / "README.md", context=_full_context()
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


def test_context_round_trips_through_its_json_file(tmp_path):
    context = CardContext.from_dict(_full_context())
    assert context.labels == ["ham", "spam"]  # an id2label dict becomes the names in id order
    path = context.save(tmp_path)
    assert path.name == CARD_CONTEXT_FILE
    assert CardContext.load(path) == context
    assert CardContext.from_folder(tmp_path) == context  # the saved context wins


def test_context_rejects_unknown_fields_naming_the_file(tmp_path):
    with pytest.raises(ValueError, match="unknown model-card field"):
        CardContext.from_dict({"labelz": ["a", "b"]})
    (tmp_path / CARD_CONTEXT_FILE).write_text(json.dumps({"labelz": ["a"]}))
    with pytest.raises(
        OSError, match=rf"{CARD_CONTEXT_FILE}: unknown model-card field\(s\) labelz"
    ):
        CardContext.from_folder(tmp_path)


def test_context_from_a_folder_without_saved_context(tmp_path):
    """config.json (labels), all_results.json (scores) and the README's metadata, as another
    tool or an older hf_spam left them."""
    (tmp_path / "config.json").write_text(json.dumps({"id2label": {"1": "spam", "0": "ham"}}))
    results = {
        "test_accuracy": 0.95, "test_runtime": 1.2, "test_samples": 300, "train_loss": 0.1,
        "validation_samples": 149, "total_parameters": 1000, "train_runtime": 61.4,
        "confusion_matrix": {"test": [[140, 10], [5, 145]]},
    }  # fmt: skip
    (tmp_path / "all_results.json").write_text(json.dumps(results))
    readme = CardContext(base_model=None, license="apache-2.0", dataset_id=None)
    render_model_card(None, tmp_path / "README.md", context=readme)
    context = CardContext.from_folder(tmp_path)
    assert context.labels == ["ham", "spam"]
    assert context.results == {"test": {"test_accuracy": 0.95}, "train": {"train_loss": 0.1}}
    assert context.split_sizes == {"validation": 149, "test": 300}
    assert context.confusion_matrix == [[140, 10], [5, 145]]
    assert (context.total_parameters, context.training_time) == (1000, "61 s")
    assert (context.license, context.base_model, context.dataset_id) == ("apache-2.0", None, None)
    assert load_card_context(tmp_path) == context.to_dict()


def test_context_from_a_folder_without_card_claims_no_base_model(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"id2label": {"0": "a", "1": "b"}}))
    context = CardContext.from_folder(tmp_path)
    assert (context.base_model, context.dataset_id, context.labels) == (None, None, ["a", "b"])
    text = render_model_card(None, tmp_path / "README.md", context=context).read_text()
    assert "base_model" not in _front_matter(text) and "a or b" in text


def test_license_is_a_field():
    assert build_card_data(CardContext(license="apache-2.0")).license == "apache-2.0"
    assert build_card_data({}).license == "mit"  # OpenAI's GPT-2 weights
