"""Texts cut to the context before tokenizing (hf_spam.inference.context): the ids of tokenizing
the whole text and keeping the first `max_length` (tiktoken's, independently), for short, long
and awkward texts, on every inference path; and memory that does not grow with the text."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest
import tiktoken
import torch
from helpers import ROOT, random_model, save_small_bpe
from transformers import GPT2TokenizerFast

from hf_spam.data import get_tokenizer
from hf_spam.inference.bulk import classify_bulk
from hf_spam.inference.context import context_prefix
from hf_spam.inference.load import classify, load_classifier

#: Pieces whose tokens depend on what follows: contractions, runs of spaces, multi-byte
#: characters, a literal end-of-text marker, line ends.
PIECES = [*"ab l'sxtdmrv  \n\t12.,!é😀中", "'ll", "'ve", "  ", "<|endoftext|>", "\r\n", "WIN"]


def awkward_texts(n: int, longest: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, longest))) for _ in range(n)]


LONG_TEXTS = {
    "sms": "Free entry in 2 a wkly comp to win FA Cup final tkts 21st May 2005.",
    "words": "WIN a £1000 prize, call now! " * 20_000,
    "one-word": "a" * 140_000,
    "digits": "1234567890" * 14_000,
    "spaces": "  hi" + " " * 140_000 + "there",
    "emoji": "🙂é中 " * 50_000,
    "lines": "ok\r\n" * 100_000,
    "end-of-text": "<|endoftext|>" * 20_000,
}


@pytest.fixture(scope="module")
def gpt2_encoding(tiktoken_available) -> tiktoken.Encoding:
    return tiktoken.get_encoding("gpt2")


@pytest.mark.parametrize("max_length", [1, 7, 64, 1024])
@pytest.mark.parametrize("name", list(LONG_TEXTS))
def test_prefix_gives_the_first_ids_of_the_whole_text(name, max_length, gpt2_encoding):
    text = LONG_TEXTS[name]
    tokenizer = get_tokenizer(max_length)
    prefix = context_prefix(tokenizer, text)
    assert text.startswith(prefix)
    ids = tokenizer(prefix, truncation=True)["input_ids"]
    assert ids == gpt2_encoding.encode_ordinary(text)[:max_length]
    if len(text) > 500_000:
        assert len(prefix) < len(text)  # cut: the tokenizer never saw the whole text


def test_cut_at_the_smallest_bound_still_keeps_the_ids(monkeypatch, gpt2_encoding):
    """With a bound of one character per token and the tightest margin, nearly every text is
    cut right after its last kept token, where the look-ahead check alone keeps the ids (a
    contraction or a run of spaces cut in two would change them)."""
    monkeypatch.setattr("hf_spam.inference.context._characters_per_token", lambda tokenizer: 1)
    monkeypatch.setattr("hf_spam.inference.context.LOOKAHEAD_MARGIN", 4)  # GPT-2's pattern: 3
    cut = 0
    for max_length in (1, 2, 5, 13):
        tokenizer = get_tokenizer(max_length)
        for text in awkward_texts(600, 150, seed=max_length):
            prefix = context_prefix(tokenizer, text)
            cut += len(prefix) < len(text)
            ids = tokenizer(prefix, truncation=True)["input_ids"]
            assert ids == gpt2_encoding.encode_ordinary(text)[:max_length], repr(text)
    assert cut > 1500


def test_a_tokenizer_of_its_own_keeps_its_ids(tmp_path, monkeypatch):
    """A checkpoint's own BPE (other vocabulary, other longest entry), loaded as inference does."""
    reference = save_small_bpe(tmp_path)
    tokenizer = GPT2TokenizerFast.from_pretrained(tmp_path, model_max_length=9)
    monkeypatch.setattr("hf_spam.inference.context._characters_per_token", lambda tokenizer: 1)
    for text in [*awkward_texts(300, 120), "WIN free prize call now " * 5000]:
        prefix = context_prefix(tokenizer, text)
        assert tokenizer(prefix, truncation=True)["input_ids"] == reference.encode(text).ids[:9]


def test_left_truncation_and_no_maximum_get_the_whole_text():
    tokenizer = get_tokenizer(8)
    tokenizer.truncation_side = "left"
    assert context_prefix(tokenizer, "word " * 10_000) == "word " * 10_000
    assert context_prefix(get_tokenizer(int(1e30)), "word " * 10_000) == "word " * 10_000


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, tiktoken_available):
    return random_model(tmp_path_factory.mktemp("context") / "model")


def _scores_of_ids(model, ids: list[int]) -> list[float]:
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    return logits.softmax(-1).tolist()


def test_every_path_reads_the_first_tokens(tiny_model, gpt2_encoding):
    """predict's bulk path, the pipeline (predict's small inputs, evaluate, the demo's batch tab)
    and the demo's explanation read a long text's first 64 tokens, as training would."""
    pytest.importorskip("gradio")
    from hf_spam.demo.app import explain

    classifier = load_classifier(tiny_model, device="cpu")
    texts = [LONG_TEXTS["words"], LONG_TEXTS["emoji"], LONG_TEXTS["sms"]]
    expected = [
        _scores_of_ids(classifier.model, gpt2_encoding.encode_ordinary(text)[:64]) for text in texts
    ]
    bulk = list(classify_bulk(classifier.model, classifier.tokenizer, texts, progress=False))
    piped = classify(classifier, texts, progress=False)
    for predictions in (bulk, piped):
        for prediction, scores in zip(predictions, expected, strict=True):
            assert list(prediction.scores.values()) == pytest.approx(scores, abs=1e-5)
    assert [p.text for p in bulk] == texts  # the predictions keep the whole text
    explanation = explain(classifier, texts[0])
    assert list(explanation.scores.values()) == pytest.approx(expected[0], abs=1e-5)
    assert len(explanation.attributions) == 64
    assert "".join(piece for piece, _ in explanation.segments) == texts[0]


# A 20 MB single-line text through each path, in a fresh process: the growth of its peak
# resident memory over what the text itself takes. Tokenizing it whole took about 2.5 GB.
PEAK_MEMORY = """
import json, resource, sys
from hf_spam.inference.bulk import classify_bulk
from hf_spam.inference.load import classify, load_classifier

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

classifier = load_classifier(sys.argv[1], device="cpu")
classify(classifier, ["warm up"], progress=False)
text = "WIN a prize, call now! " * 900_000
growth, start = {}, peak_mb()
list(classify_bulk(classifier.model, classifier.tokenizer, [text], progress=False))
growth["bulk"], start = peak_mb() - start, peak_mb()
classify(classifier, [text], progress=False)
growth["pipeline"] = peak_mb() - start
print(json.dumps(growth))
"""


def test_a_huge_text_takes_memory_independent_of_its_length(tiny_model):
    result = subprocess.run(
        [sys.executable, "-c", PEAK_MEMORY, str(tiny_model)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    growth = json.loads(result.stdout.strip().splitlines()[-1])
    assert growth["bulk"] < 200 and growth["pipeline"] < 200, growth  # megabytes
