"""`hf-spam export --format gpt2`: transformers' own GPT-2 classifier, the original's logits."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import error_lines, pad, random_model, run_fresh_python

from hf_spam import GPTConfig, GPTForSequenceClassification
from hf_spam.cli import main
from hf_spam.inference.load import classify, load_classifier
from hf_spam.model.weights import load_openai_gpt2

TEXTS = [
    "WIN a free prize, call now",
    "See you at 7",
    "ok",
    "a literal <|endoftext|>",
    "ends in <|endoftext|>",
    "a message long enough to be cut at the context length " * 12,
]
#: pipeline() where hf_spam cannot be imported, without remote code: every class's score.
NATIVE_PIPELINE = """
import json, sys
sys.modules["hf_spam"] = None  # any import of hf_spam fails
from transformers import pipeline
texts = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {texts!r}
classifier = pipeline("text-classification", model={folder!r}, batch_size=4)
outputs = classifier(texts, top_k=None, truncation=True)
print(json.dumps([{{item["label"]: item["score"] for item in output}} for output in outputs]))
"""


def export(source, out, *extra) -> int:
    return main(
        ["export", "--format", "gpt2", "--model", str(source), "--output", str(out), *extra]
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpt2-export")
    source = random_model(root / "source", head_bias=1.0)
    assert export(source, root / "gpt2") == 0
    return source, root / "gpt2"


def test_pipeline_without_hf_spam_gives_the_originals_labels_and_scores(exported, tmp_path):
    source, out = exported
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["GPT2ForSequenceClassification"]
    assert "auto_map" not in config and not list(out.glob("*.py"))
    native = run_fresh_python(NATIVE_PIPELINE.format(texts=TEXTS, folder=str(out)), tmp_path)
    original = classify(load_classifier(source, device="cpu", batch_size=4), TEXTS)
    for prediction, scores in zip(original, native, strict=True):
        assert max(scores, key=scores.get) == prediction.label
        for label, score in prediction.scores.items():
            assert scores[label] == pytest.approx(score, abs=1e-5)


def test_padding_finds_the_same_last_token(exported):
    """Right-padded rows (and left-padded ones given positions from the mask, as GPT-2 counts
    positions from the row's start) score as each row does alone in the original."""
    from transformers import GPT2ForSequenceClassification

    source, out = exported
    original = GPTForSequenceClassification.from_pretrained(source).eval()
    native = GPT2ForSequenceClassification.from_pretrained(out).eval()
    rows = [[464, 2068, 7586], [40, 1101], [3666, 373, 11, 340, 318, 257, 1332, 13], [50]]
    with torch.no_grad():
        alone = torch.cat([original(torch.tensor([row])).logits for row in rows])
        for side in ("right", "left"):
            ids, mask = pad(rows, side=side, fill=native.config.pad_token_id)
            positions = (mask.cumsum(-1) - 1).clamp(min=0) if side == "left" else None
            logits = native(input_ids=ids, attention_mask=mask, position_ids=positions).logits
            torch.testing.assert_close(logits, alone, atol=1e-5, rtol=1e-5)


def test_round_trip_through_convert_gives_the_same_logits(exported):
    """hf_spam's own GPT-2 loader (`model/weights.py`) reads the export back: its trunk, the
    folded final norm and `score` give the original's logits with a zero head bias."""
    source, out = exported
    original = GPTForSequenceClassification.from_pretrained(source).eval()
    back = load_openai_gpt2(GPTForSequenceClassification, out)
    assert not back.out_head.bias.any()
    ids = torch.randint(0, 50256, (3, 9))
    with torch.no_grad():
        torch.testing.assert_close(back(ids).logits, original(ids).logits, atol=1e-5, rtol=1e-5)


def test_temperature_is_folded_into_the_scores(tmp_path):
    if getattr(GPTConfig(temperature=2.5), "temperature", None) != 2.5:
        pytest.skip("GPTConfig keeps no temperature (transformers drops it as a generation flag)")
    source = random_model(tmp_path / "source", head_bias=1.0, temperature=2.5)
    assert export(source, tmp_path / "gpt2") == 0
    native = run_fresh_python(
        NATIVE_PIPELINE.format(texts=TEXTS[:3], folder=str(tmp_path / "gpt2")), tmp_path
    )
    model = GPTForSequenceClassification.from_pretrained(source).eval()
    tokenizer_ids = load_classifier(source, device="cpu").tokenizer(TEXTS[:3])["input_ids"]
    for ids, scores in zip(tokenizer_ids, native, strict=True):
        with torch.no_grad():
            expected = (model(torch.tensor([ids])).logits[0] / 2.5).softmax(-1)
        assert [scores["ham"], scores["spam"]] == pytest.approx(expected.tolist(), abs=1e-5)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"trainable_token_pos": "last", "padded_length": 16}, "trainable_token_pos=last"),
        ({"trainable_token_pos": "first"}, "trainable_token_pos=first"),
        ({"average_embeddings": True}, "average_embeddings=true"),
        ({"disable_causal_mask": True}, "disable_causal_mask=true"),
        ({"decision_threshold": 0.3}, "decision_threshold=0.3"),
    ],
)
def test_settings_gpt2_cannot_express_are_refused(tmp_path, capsys, fields, named):
    source = random_model(tmp_path / "source", **fields)
    assert export(source, tmp_path / "gpt2") == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert named in line and "GPT-2" in line
    assert not (tmp_path / "gpt2").exists()


def test_a_head_of_deficient_rank_is_refused(tmp_path, capsys):
    """Three classes whose third row is the sum of the others: `W pinv(W)` is not the identity,
    so no shift of the final norm gives every bias."""
    source = random_model(tmp_path / "source", id2label={0: "a", 1: "b", 2: "c"}, head_bias=1.0)
    model = GPTForSequenceClassification.from_pretrained(source)
    with torch.no_grad():
        model.out_head.weight[2] = model.out_head.weight[0] + model.out_head.weight[1]
    model.save_pretrained(source)
    assert export(source, tmp_path / "gpt2") == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert "out_head.weight has rank 2 < 3 classes" in line and "ln_f.bias" in line


def test_a_tokenizer_that_reads_end_of_text_as_the_pad_id_is_refused(tmp_path, capsys):
    from transformers import AutoTokenizer

    source = random_model(tmp_path / "source")
    tokenizer = AutoTokenizer.from_pretrained(source, split_special_tokens=False)
    tokenizer.save_pretrained(source)
    assert export(source, tmp_path / "gpt2") == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert "tokenizer_config.json" in line and "50256" in line and "split_special_tokens" in line


def test_an_existing_output_and_a_missing_model_are_named(exported, tmp_path, capsys):
    source, out = exported
    assert export(source, out) == 2
    assert f"--output {out} exists and is not empty; pass --overwrite" in capsys.readouterr().err
    assert export(tmp_path / "nothing", tmp_path / "new") == 1
    assert f"{tmp_path / 'nothing'}: not a folder" in capsys.readouterr().err
