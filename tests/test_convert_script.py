"""hf-spam convert (scripts/convert_gpt2.py) writes a standard save_pretrained folder, or nothing at all."""

from __future__ import annotations

import json

import torch

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
