"""The bundled evaluate module against scikit-learn, through every route callers use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import evaluate
import numpy as np
import pytest
from sklearn import metrics as sk
from transformers import EvalPrediction

from hf_spam.metrics import (
    CLASSIFICATION_METRIC_PATH,
    compute_classification_metrics,
    load_classification_metric,
    make_compute_metrics,
)

# (class names or None, classes that are never predicted)
CASES = {
    "binary-named": (["ham", "spam"], ()),
    "binary-never-predicts-spam": (["ham", "spam"], (1,)),
    "three-indexed-never-predicts-2": (None, (2,)),
    "three-named": (["negative", "neutral", "positive"], ()),
}


def _random_case(num_labels: int, never_predicted: tuple[int, ...], seed: int = 0):
    rng = np.random.default_rng(seed)
    references = rng.integers(0, num_labels, size=200)
    allowed = [c for c in range(num_labels) if c not in never_predicted]
    predictions = rng.choice(allowed, size=200)
    return predictions, references


def _assert_matches_sklearn(result: dict, predictions, references, names: list[str] | None, n: int):
    labels = list(range(n))
    keys = names or [str(i) for i in labels]
    assert result["accuracy"] == pytest.approx(sk.accuracy_score(references, predictions))
    precision, recall, f1, support = sk.precision_recall_fscore_support(
        references, predictions, labels=labels, average=None, zero_division=0
    )
    for i, key in enumerate(keys):
        assert result[f"precision_{key}"] == pytest.approx(precision[i])
        assert result[f"recall_{key}"] == pytest.approx(recall[i])
        assert result[f"f1_{key}"] == pytest.approx(f1[i])
        if f"support_{key}" in result:
            assert result[f"support_{key}"] == support[i]
    for average in ("macro", "weighted"):
        p, r, f, _ = sk.precision_recall_fscore_support(
            references, predictions, labels=labels, average=average, zero_division=0
        )
        assert result[f"precision_{average}"] == pytest.approx(p)
        assert result[f"recall_{average}"] == pytest.approx(r)
        assert result[f"f1_{average}"] == pytest.approx(f)


@pytest.mark.parametrize("case", CASES)
def test_evaluate_load_matches_sklearn(case):
    names, never = CASES[case]
    n = len(names) if names else 3
    predictions, references = _random_case(n, never)
    metric = evaluate.load(str(CLASSIFICATION_METRIC_PATH), id2label=names, keep_in_memory=True)
    result = metric.compute(predictions=predictions, references=references)

    _assert_matches_sklearn(result, predictions, references, names, n)
    expected = sk.confusion_matrix(references, predictions, labels=list(range(n)))
    assert result["confusion_matrix"] == expected.tolist()
    for class_index in never:
        assert [row[class_index] for row in result["confusion_matrix"]] == [0] * n


@pytest.mark.parametrize("case", CASES)
def test_trainer_compute_metrics_matches_sklearn(case):
    names, never = CASES[case]
    n = len(names) if names else 3
    predictions, references = _random_case(n, never, seed=1)
    logits = np.random.default_rng(2).normal(size=(len(predictions), n)).astype(np.float32)
    logits[np.arange(len(predictions)), predictions] += 10.0  # argmax == predictions
    compute_metrics = make_compute_metrics(dict(enumerate(names)) if names else None)

    # Models may return extra outputs after the logits: Trainer then passes a tuple.
    scores = compute_metrics(
        EvalPrediction(predictions=(logits, np.zeros((len(logits), 4))), label_ids=references)
    )

    assert all(type(value) is float for value in scores.values()), scores
    assert not any(key.startswith("support_") for key in scores)
    _assert_matches_sklearn(scores, predictions, references, names, n)
    expected = sk.confusion_matrix(references, predictions, labels=list(range(n)))
    assert compute_metrics.confusion_matrix == expected.tolist()
    assert compute_metrics.last_result["confusion_matrix"] == expected.tolist()


def test_compute_metrics_accepts_class_ids_from_preprocess_logits():
    compute_metrics = make_compute_metrics(["ham", "spam"])
    scores = compute_metrics(
        EvalPrediction(predictions=np.array([0, 1, 1]), label_ids=np.array([0, 1, 0]))
    )
    assert scores["accuracy"] == pytest.approx(2 / 3)
    assert compute_metrics.confusion_matrix == [[1, 1], [0, 1]]


def test_label_names_fix_the_class_set_and_accept_json_keys():
    # A config read from JSON has string keys; spam never occurs, yet it gets (zero) scores.
    result = compute_classification_metrics([0, 0], [0, 0], {"1": "Spam!", "0": "ham"})
    assert result["confusion_matrix"] == [[2, 0], [0, 0]]
    assert result["precision_spam"] == result["recall_spam"] == result["f1_spam"] == 0.0
    assert result["support_spam"] == 0
    # Without names, classes run up to the largest index seen.
    assert compute_classification_metrics([3], [0])["confusion_matrix"][0] == [0, 0, 0, 1]


def test_doc_example():
    report = load_classification_metric({0: "ham", 1: "spam"})
    result = report.compute(predictions=[0, 1, 1, 0], references=[0, 1, 0, 0])
    assert (result["accuracy"], result["precision_spam"], result["confusion_matrix"]) == (
        0.75,
        0.5,
        [[2, 1], [0, 1]],
    )


def test_scalar_only_mode_for_bootstrap():
    metric = load_classification_metric(["ham", "spam"], confusion_matrix=False)
    result = metric.compute(predictions=[0, 1], references=[0, 1])
    assert "confusion_matrix" not in result
    assert all(np.isscalar(value) for value in result.values())


def test_scalars_configuration_suits_run_classification():
    """`evaluate.load(path, "scalars")`: numbers only, the confusion matrix as counts, so the
    mean of the results (transformers' `run_classification.py` `combined_score`) is defined."""
    rng = np.random.default_rng(0)
    predictions, references = rng.integers(0, 3, 60), rng.integers(0, 3, 60)
    metric = evaluate.load(str(CLASSIFICATION_METRIC_PATH), "scalars", keep_in_memory=True)
    result = metric.compute(predictions=predictions, references=references)
    assert all(np.isscalar(value) for value in result.values())
    matrix = sk.confusion_matrix(references, predictions, labels=[0, 1, 2])
    counts = {key: value for key, value in result.items() if key.startswith("confusion_")}
    assert counts == {f"confusion_{i}_{j}": matrix[i, j] for i in range(3) for j in range(3)}
    assert result["accuracy"] == pytest.approx(sk.accuracy_score(references, predictions))
    combined = np.mean(list(result.values())).item()  # run_classification.py's own line
    assert combined == pytest.approx(sum(result.values()) / len(result))
    default = evaluate.load(str(CLASSIFICATION_METRIC_PATH), keep_in_memory=True)
    assert "confusion_matrix" in default.compute(predictions=[0, 1], references=[0, 1])


@pytest.mark.parametrize(
    ("predictions", "references", "id2label", "message"),
    [
        ([0, 2], [0, 1], ["ham", "spam"], "class indices"),
        ([0, -1], [0, 1], None, "class indices"),
        ([0, 1], [0, 1], ["a", "A"], "ambiguous"),
        ([0, 1], [0, 1], ["macro", "other"], "ambiguous"),
        ([0, 1], [0, 1], {0: "ham", 2: "spam"}, "exactly the ids"),
        ([[0.1, 0.9]], [1], None, "argmax"),
    ],
)
def test_invalid_inputs(predictions, references, id2label, message):
    with pytest.raises(ValueError, match=message):
        compute_classification_metrics(predictions, references, id2label)


def test_evaluator_with_model_and_bound_label_names():
    """`evaluator.compute` passes only predictions/references, so the names bound at load time
    must name the keys. (evaluate 0.4.6 with transformers 5 needs the model and tokenizer here: a
    Pipeline object trips over its check for the removed `transformers.TFPreTrainedModel`.)"""
    import torch
    from datasets import Dataset
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        PreTrainedTokenizerFast,
        pipeline,
    )

    vocab = {"[UNK]": 0, "[PAD]": 1, "free": 2, "prize": 3, "call": 4, "hi": 5, "mum": 6}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]"
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=8,
        id2label={0: "ham", 1: "spam"},
        label2id={"ham": 0, "spam": 1},
    )
    model = BertForSequenceClassification(config).eval()
    texts = ["free prize call", "hi mum", "call mum", "free hi", "prize prize", "mum"]
    data = Dataset.from_dict({"text": texts, "label": [1, 0, 0, 1, 1, 0]})

    result = evaluate.evaluator("text-classification").compute(
        model_or_pipeline=model,
        tokenizer=tokenizer,
        data=data,
        metric=load_classification_metric(config.id2label),
        label_mapping=config.label2id,
        device=-1,
    )

    classify = pipeline("text-classification", model=model, tokenizer=tokenizer, device=-1)
    predictions = [config.label2id[output["label"]] for output in classify(texts)]
    expected = compute_classification_metrics(predictions, data["label"], config.id2label)
    assert {key: result[key] for key in expected} == expected
    assert "f1_spam" in result and "total_time_in_seconds" in result


def test_loads_offline_in_a_fresh_process(tmp_path):
    """No Hub, no network, an empty modules cache: the module still loads from its folder."""
    code = (
        "import json; from hf_spam.metrics import compute_classification_metrics as c; "
        "print(json.dumps(c([0, 1, 1], [0, 1, 0], ['ham', 'spam'])))"
    )
    dead_proxy = "http://127.0.0.1:9"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_EVALUATE_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_MODULES_CACHE": str(tmp_path / "modules"),
        "HF_HOME": str(tmp_path / "hf_home"),
        "HTTP_PROXY": dead_proxy,
        "HTTPS_PROXY": dead_proxy,
        "NO_PROXY": "",
    }
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["precision_spam"] == 0.5
    assert result["confusion_matrix"] == [[1, 1], [0, 1]]
