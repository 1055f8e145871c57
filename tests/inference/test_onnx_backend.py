"""`hf-spam predict --backend onnxruntime`: the bulk path on an exported graph gives torch's
labels and scores."""

from __future__ import annotations

import json

import pytest
from helpers import error_lines, random_model

from hf_spam.cli import main

pytest.importorskip("onnxruntime")

TEXTS = ["WIN a free prize, call now", "See you at 7", "ok", "Txt STOP to 8007 " * 4, ""]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny classifier's folder and its ONNX export."""
    root = tmp_path_factory.mktemp("onnx-backend")
    source = random_model(root / "source", head_bias=1.0)
    argv = ["export", "--format", "onnx", "--model", str(source), "--output", str(root / "onnx")]
    assert main(argv) == 0
    return source, root / "onnx"


def test_predict_with_onnxruntime_gives_torchs_labels_and_scores(exported, tmp_path):
    source, out = exported
    results = {}
    for name, flags in {"torch": ["--model", str(source)],
                        "onnx": ["--model", str(out), "--backend", "onnxruntime"]}.items():  # fmt: skip
        path = tmp_path / f"{name}.jsonl"
        assert main(["predict", *flags, "--output", str(path), "--batch_size", "2", *TEXTS]) == 0
        results[name] = [json.loads(line) for line in path.read_text().splitlines()]
    for torch_row, onnx_row in zip(results["torch"], results["onnx"], strict=True):
        assert onnx_row["label"] == torch_row["label"]
        assert onnx_row["scores"] == pytest.approx(torch_row["scores"], abs=1e-4)


def test_predict_backend_errors_name_the_flag_and_the_file(exported, capsys):
    source, out = exported
    assert main(["predict", "--model", str(source), "--backend", "onnxruntime", "hi"]) == 1
    (line,) = error_lines(capsys.readouterr().err)
    assert f"{source}: no model.onnx" in line and "hf-spam export --format onnx" in line
    argv = ["predict", "--model", str(out), "--backend", "onnxruntime", "--use_pipeline", "true"]
    assert main([*argv, "hi"]) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert "--use_pipeline" in line and "--backend onnxruntime" in line
