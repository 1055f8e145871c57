"""`pipeline("text-classification")` on a trained folder: with hf_spam imported and in a fresh
process with `trust_remote_code=True` only; label names, every class's score, batching, long and
empty inputs."""

from __future__ import annotations

import textwrap

import pytest
import torch
from helpers import random_model, run_fresh_python, trained_model
from transformers import pipeline

TEXTS = [
    "WIN a free prize call now",
    "see you at home later mum",
    "",
    "ok",
    "urgent cash offer txt claim now " * 40,  # far longer than the 64-token context
    "thanks for dinner, see you tomorrow",
    "free",
    "call now to claim your prize " * 3,
]


@pytest.fixture(scope="module")
def model_dir(spam_csv, tmp_path_factory):
    return trained_model(tmp_path_factory, spam_csv)


@pytest.fixture(scope="module")
def classifier(model_dir):
    return pipeline("text-classification", model=str(model_dir))


def test_answers_with_label_names_and_every_score(classifier):
    [best] = classifier("WIN a free prize call now")
    assert best["label"] == "spam" and 0.5 < best["score"] <= 1.0
    assert classifier("see you at home later mum")[0]["label"] == "ham"
    every = classifier("WIN a free prize call now", top_k=None)
    assert [entry["label"] for entry in every] == ["spam", "ham"]  # best first
    assert every[0]["score"] == pytest.approx(best["score"])
    assert sum(entry["score"] for entry in every) == pytest.approx(1.0)


def test_label_names_come_from_id2label(tmp_path, tiktoken_available):
    folder = random_model(tmp_path / "model", id2label={0: "legit", 1: "junk", 2: "phishing"})
    out = pipeline("text-classification", model=str(folder))("hello there", top_k=None)
    assert sorted(entry["label"] for entry in out) == ["junk", "legit", "phishing"]


def test_batches_give_the_scores_of_one_text_at_a_time(classifier):
    alone = [classifier(text, top_k=None) for text in TEXTS]
    batched = classifier(TEXTS * 3, batch_size=16, top_k=None)
    for one, many in zip(alone * 3, batched, strict=True):
        assert [e["label"] for e in one] == [e["label"] for e in many]
        for a, b in zip(one, many, strict=True):
            assert a["score"] == pytest.approx(b["score"], abs=1e-5, rel=0)


def _probabilities(model, ids: list[int]) -> list[float]:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits.softmax(-1)[0].tolist()


def test_long_text_is_truncated_and_empty_text_answered(classifier):
    model, tokenizer = classifier.model, classifier.tokenizer
    context = model.config.context_length
    long_text = TEXTS[4]
    ids = tokenizer(long_text)["input_ids"]
    assert len(ids) > 3 * context
    [answer] = classifier(long_text)
    # The first `context` tokens decide, as the model cuts the input there.
    expected = _probabilities(model, ids[:context])
    assert answer["score"] == pytest.approx(max(expected), abs=1e-5)
    assert answer["label"] == model.config.id2label[expected.index(max(expected))]

    [empty] = classifier("")
    end_of_text = _probabilities(model, [tokenizer.eos_token_id])
    assert empty["score"] == pytest.approx(max(end_of_text), abs=1e-5)
    assert empty["label"] in ("ham", "spam")


def test_fresh_process_with_trust_remote_code_only(classifier, model_dir, tmp_path):
    script = textwrap.dedent(
        f"""
        import json, sys
        from transformers import pipeline
        clf = pipeline("text-classification", model={str(model_dir)!r}, trust_remote_code=True)
        assert not any(m == "hf_spam" or m.startswith("hf_spam.") for m in sys.modules)
        texts = {TEXTS!r}
        print(json.dumps({{
            "class": type(clf.model).__name__,
            "tokenizer": type(clf.tokenizer).__name__,
            "one": [clf(t) for t in texts],
            "all": clf(texts, batch_size=16, top_k=None),
        }}))
        """
    )
    out = run_fresh_python(script, tmp_path)
    assert out["class"] == "GPTForSequenceClassification"
    assert out["tokenizer"] in ("GPT2Tokenizer", "GPT2TokenizerFast")
    here = classifier(TEXTS, top_k=None)
    for fresh_one, fresh_all, local in zip(out["one"], out["all"], here, strict=True):
        assert fresh_one[0]["label"] == local[0]["label"]
        assert fresh_one[0]["score"] == pytest.approx(local[0]["score"], abs=1e-5)
        assert [e["label"] for e in fresh_all] == [e["label"] for e in local]
        for a, b in zip(fresh_all, local, strict=True):
            assert a["score"] == pytest.approx(b["score"], abs=1e-5)
