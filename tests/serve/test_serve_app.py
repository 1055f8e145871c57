"""The app in process (httpx over ASGI, the lifespan run): answers against `pipeline()`, the
batching, the limits and every error as one JSON line."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
import httpx  # noqa: E402
from helpers import random_model  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from transformers import pipeline  # noqa: E402

from hf_spam.serve.app import create_app  # noqa: E402
from hf_spam.serve.arguments import BatchingArguments  # noqa: E402
from hf_spam.serve.served import load_served_model  # noqa: E402

TEXTS = [
    "WINNER!! You have been selected to receive a £900 prize reward. Call 09061701461.",
    "Sorry, I'll call you later.",
    "",
    "ok",
    "Free entry in 2 a wkly comp to win FA Cup final tkts " * 20,  # past the 64-token context
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return random_model(tmp_path_factory.mktemp("serve-app") / "tiny")


@pytest.fixture(scope="module")
def served(folder):
    return load_served_model(str(folder), device="cpu")


@pytest.fixture(scope="module")
def reference(folder):
    """transformers' own pipeline over the same folder: the answers to match."""
    return pipeline("text-classification", model=str(folder), device="cpu")


def exchange(served, requests, **limits):
    """Send `requests` ((method, path, json or bytes), ...) concurrently to a fresh app; return
    the responses and the app's /metrics parsed."""
    app = create_app(served, BatchingArguments(**limits))

    async def go():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

                async def one(method, path, body=None):
                    if isinstance(body, bytes):
                        return await client.request(method, path, content=body)
                    return await client.request(method, path, json=body)

                answers = await asyncio.gather(*(one(*request) for request in requests))
                metrics = (await client.get("/metrics")).text
        return answers, metrics

    return asyncio.run(go())


def metric(text: str, name: str, **labels) -> float:
    """The value of sample `name` (with `labels`) in a Prometheus text exposition."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    raise AssertionError(f"no sample {name} {labels}")


def assert_same(answer: list[dict], expected: list[dict]) -> None:
    assert [item["label"] for item in answer] == [item["label"] for item in expected]
    for got, want in zip(answer, expected, strict=True):
        assert math.isclose(got["score"], want["score"], abs_tol=1e-5)


def test_both_protocols_answer_as_the_pipeline_does(served, reference):
    expected = reference(TEXTS, top_k=None, truncation=True)
    raw = reference(TEXTS, top_k=None, truncation=True, function_to_apply="none")
    sigmoid = reference(TEXTS[0], top_k=1, function_to_apply="sigmoid")
    batch = [[text] for text in TEXTS]
    (single, tei_batch, tei_raw, api, api_top, *_), _ = exchange(
        served,
        [
            ("POST", "/predict", {"inputs": TEXTS[0]}),
            ("POST", "/predict", {"inputs": batch}),
            ("POST", "/predict", {"inputs": batch, "raw_scores": True}),
            ("POST", "/", {"inputs": TEXTS, "parameters": {}}),
            (
                "POST",
                "/",
                {"inputs": TEXTS[0], "parameters": {"top_k": 1, "function_to_apply": "sigmoid"}},
            ),
        ],  # fmt: skip
    )
    assert single.status_code == 200
    assert_same(single.json(), expected[0])  # TEI: one text, one list
    for answers, want in ((tei_batch, expected), (tei_raw, raw), (api, expected)):
        assert answers.status_code == 200, answers.text
        assert len(answers.json()) == len(TEXTS)
        for answer, reference_answer in zip(answers.json(), want, strict=True):
            assert_same(answer, reference_answer)
    assert len(api_top.json()) == 1  # the Inference API: a list per text, always
    assert_same(api_top.json()[0], sigmoid)


def test_concurrent_requests_share_batches_and_each_gets_its_own_answer(served, reference):
    texts = [f"message number {i} " * (i % 5 + 1) for i in range(24)]
    expected = reference(texts, top_k=None)
    requests = [
        ("POST", "/predict", {"inputs": text, "raw_scores": i % 3 == 0})
        for i, text in enumerate(texts)
    ]
    answers, metrics = exchange(served, requests, max_batch_size=64, max_wait_ms=200)
    raw = reference([t for i, t in enumerate(texts) if i % 3 == 0], top_k=None,
                    function_to_apply="none")  # fmt: skip
    raw_answers = iter(raw)
    for i, answer in enumerate(answers):
        assert answer.status_code == 200
        assert_same(answer.json(), next(raw_answers) if i % 3 == 0 else expected[i])
    batches = metric(metrics, "hf_spam_batch_size_count")
    assert metric(metrics, "hf_spam_batch_size_sum") == len(texts)
    assert batches <= 4, batches  # two scorings, gathered while the first batch waits
    assert metric(metrics, "hf_spam_texts_total") == len(texts)
    assert metric(metrics, "hf_spam_requests_total", route="/predict", status="200") == 24
    assert metric(metrics, "hf_spam_request_duration_seconds_count", route="/predict") == 24


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"{bad", 422, "body: invalid JSON (key must be a string at line 1 column 2)"),
        (b"", 422, "body: invalid JSON (EOF while parsing a value at line 1 column 0)"),
        ([1, 2], 422, "body: Input should be an object"),
        ({}, 422, "inputs: Field required"),
        ({"inputs": 3}, 422, "inputs: must be a text or a batch [[text], ...], got a number"),
        ({"inputs": []}, 422, "inputs: an empty batch; send at least one text"),
        (
            {"inputs": [["a"], ["b", "c"]]},
            422,
            "inputs: item 1 must be a one-text list [text], got 2 texts",
        ),
        (
            {"inputs": [["a"], [7]]},
            422,
            "inputs: item 1 must be a text (a JSON string), got a number",
        ),
        ({"inputs": "a", "raw_score": True}, 422, "raw_score: unknown field"),
        ({"inputs": "a", "raw_scores": "yes"}, 422, "raw_scores: Input should be a valid boolean"),
        (
            {"inputs": "a", "truncation_direction": "left"},
            422,
            "truncation_direction: only 'right' is served: texts keep their first tokens, as in "
            "training",
        ),
        (
            {"inputs": [[str(i)] for i in range(5)]},
            413,
            "batch size 5 > maximum allowed batch size 4 (--max_texts)",
        ),
        ({"inputs": "x" * 3000}, 413, "request body over 2000 bytes (--max_bytes)"),
    ],  # fmt: skip
)
def test_a_bad_predict_request_is_one_line_naming_the_field(served, body, status, error):
    (answer,), metrics = exchange(served, [("POST", "/predict", body)], max_texts=4, max_bytes=2000)
    assert answer.status_code == status
    assert answer.json() == {"error": error, "error_type": "validation"}
    assert metric(metrics, "hf_spam_errors_total", error_type="validation") == 1


def test_truncate_false_refuses_a_text_past_the_context_as_tei_does(served, encoding):
    long = TEXTS[-1]
    (refused, cut), _ = exchange(
        served,
        [
            ("POST", "/predict", {"inputs": [["ok"], [long]], "truncate": False}),
            ("POST", "/predict", {"inputs": [["ok"], [long]], "truncate": True}),
        ],
    )
    assert refused.status_code == 422
    assert refused.json() == {
        "error": f"inputs item 1: {len(encoding.encode(long))} tokens, more than the model's "
        "context of 64 (send truncate: true to cut it, as in training)",
        "error_type": "tokenizer",
    }
    assert cut.status_code == 200


def test_a_pair_and_the_inference_apis_mistakes_are_named(served):
    answers, _ = exchange(
        served,
        [
            ("POST", "/predict", {"inputs": ["a", "b"]}),
            ("POST", "/", {"inputs": "a", "parameters": {"top_k": 0}}),
            ("POST", "/", {"inputs": ["a", None]}),
            ("POST", "/", {"inputs": "a", "parameters": {"function_to_apply": "relu"}}),
            ("GET", "/nowhere"),
            ("POST", "/info", {}),
        ],
    )
    assert [a.status_code for a in answers] == [422, 422, 422, 422, 404, 405]
    errors = [a.json()["error"] for a in answers]
    assert errors[0].startswith("inputs: a pair [text, text_pair]: this model classifies single")
    assert errors[1] == "parameters.top_k: Input should be greater than or equal to 1"
    assert errors[2] == "inputs: item 1 must be a text (a JSON string), got null"
    assert errors[3].startswith("parameters.function_to_apply: Input should be 'sigmoid'")
    assert errors[4].startswith("Not Found: GET /nowhere; routes: POST /predict")
    assert errors[5].startswith("Method Not Allowed: POST /info")


def test_a_full_queue_answers_503_with_retry_after(served):
    # The first request's batch waits for more (max_wait), holding the whole queue meanwhile.
    first = ("POST", "/predict", {"inputs": [["one"], ["two"]]})
    answers, metrics = exchange(
        served, [first, ("POST", "/", {"inputs": "three"})], max_queue=2, max_texts=2,
        max_wait_ms=300,
    )  # fmt: skip
    assert answers[0].status_code == 200
    assert answers[1].status_code == 503
    assert answers[1].headers["retry-after"] == "1"
    assert answers[1].json() == {
        "error": "the queue holds 2 texts, at most 2 (--max_queue); send again shortly",
        "error_type": "overloaded",
    }
    assert metric(metrics, "hf_spam_errors_total", error_type="overloaded") == 1


def test_failures_are_one_json_line_never_a_traceback(served, monkeypatch):
    def broken_model(*args, **kwargs):
        raise RuntimeError("the model broke\nTraceback (most recent call last): ...")

    def broken_info(**limits):
        raise KeyError("no such thing")

    monkeypatch.setattr(served, "predict", broken_model)
    monkeypatch.setattr(served, "info", broken_info)
    (failed, broken, healthy), metrics = exchange(
        served, [("POST", "/predict", {"inputs": "x"}), ("GET", "/info"), ("GET", "/health")]
    )
    assert failed.status_code == 424
    assert failed.json() == {
        "error": "inference failed: RuntimeError: the model broke",
        "error_type": "backend",
    }
    assert broken.status_code == 500
    assert broken.json() == {"error": "internal error: KeyError: 'no such thing'",
                             "error_type": "backend"}  # fmt: skip
    assert healthy.json() == {"status": "ok"}  # the batcher survives a failed batch
    assert metric(metrics, "hf_spam_requests_total", route="/info", status="500") == 1


def test_info_says_what_is_served_and_how_texts_are_cut(served, folder):
    (info,), _ = exchange(served, [("GET", "/info")], max_texts=8)
    body = info.json()
    assert body["model_id"] == str(folder)
    assert body["labels"] == ["ham", "spam"]
    assert body["max_input_length"] == 64
    assert body["auto_truncate"] is True
    assert body["truncation"].startswith("texts longer than 64 tokens are cut to their first 64")
    assert body["decision_threshold"] is None
    assert body["temperature"] == 1.0
    assert body["max_client_batch_size"] == 8
    assert body["version"] == __import__("hf_spam").__version__
