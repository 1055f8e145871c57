"""hf-spam convert (scripts/convert_gpt2.py) writes a standard save_pretrained folder, or nothing at all."""

from __future__ import annotations

import json

import torch
from helpers import save_gpt2_checkpoint, save_small_bpe

from hf_spam import GPTForCausalLM, GPTForSequenceClassification
from hf_spam.cli import main


def convert(argv: list[str]) -> int:
    return main(["convert", *argv])


def test_convert_causal_lm(tiny_checkpoints, tmp_path):
    folder, ref = tiny_checkpoints["bare"]
    out = tmp_path / "converted"
    convert(["--source", str(folder), "--output_dir", str(out), "--with_tokenizer", "false"])
    model = GPTForCausalLM.from_pretrained(out)
    ids = torch.randint(0, 50257, (2, 12))
    with torch.no_grad():
        assert (model(ids).logits - ref(ids).logits).abs().max() < 1e-4


def test_convert_classifier_with_labels(tiny_checkpoints, tmp_path):
    out = tmp_path / "cls"
    convert(
        ["--source", str(tiny_checkpoints["prefixed"][0]), "--output_dir", str(out)]
        + ["--head", "classification", "--labels", "ham,spam,phish", "--with_tokenizer", "false"]
    )
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "ham", "1": "spam", "2": "phish"}
    assert GPTForSequenceClassification.from_pretrained(out).out_head.out_features == 3


def test_convert_a_gpt2_classifier_keeps_its_head_labels_and_tokenizer(tmp_path, capsys):
    """A `GPT2ForSequenceClassification` folder with its own tokenizer converts to the classifier
    by default: transformers' logits (its pad id found in the padding only), its labels, and
    the tokenizer files it brought."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    source = tmp_path / "gpt2-classifier"
    bpe = save_small_bpe(source)
    bpe.encode_special_tokens = True
    eot = bpe.token_to_id("<|endoftext|>")
    labels = {0: "ham", 1: "spam"}
    ref = save_gpt2_checkpoint(
        source, "classifier", vocab_size=bpe.get_vocab_size(), id2label=labels, pad_token_id=eot
    )
    out = tmp_path / "converted"
    assert convert(["--source", str(source), "--output_dir", str(out)]) == 0
    assert "head from the checkpoint, labels ham, spam" in capsys.readouterr().out
    model = AutoModelForSequenceClassification.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    texts = ["WIN a free prize call now", "see you at home later", "ok"]
    assert tokenizer(texts)["input_ids"] == [e.ids for e in bpe.encode_batch(texts)]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    assert int(batch["input_ids"][-1, -1]) == eot  # the shortest row ends in padding
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, ref(**batch).logits, atol=1e-5, rtol=0)
    assert model.config.id2label == labels

    fresh = tmp_path / "fresh"
    argv = ["--source", str(source), "--output_dir", str(fresh), "--labels", "neg,pos"]
    assert convert([*argv, "--with_tokenizer", "false"]) == 0
    assert "head fresh, labels neg, pos" in capsys.readouterr().out


def test_refuses_non_empty_output_and_leaves_nothing_on_failure(tiny_checkpoint, tmp_path, capsys):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    assert convert(["--source", str(tiny_checkpoint), "--output_dir", str(busy)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]

    target = tmp_path / "never"
    missing = tmp_path / "missing.safetensors"
    assert convert(["--source", str(missing), "--output_dir", str(target)]) == 1
    assert (
        capsys.readouterr().err == f"error: GPT-2 checkpoint not found: {missing} does not exist\n"
    )
    assert not target.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".never")]
