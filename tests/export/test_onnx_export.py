"""`hf-spam export --format onnx`: onnxruntime's logits are torch's on padded batches, for every
head setting the book uses."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import error_lines, pad, random_model

from hf_spam import GPTForSequenceClassification
from hf_spam.cli import main

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

#: The book's readings (`additional_experiments.py`), each padded as the book pads its rows.
HEAD_SETTINGS = {
    "last": {"trainable_token_pos": "last", "padded_length": 24},
    "first": {"trainable_token_pos": "first", "padded_length": 24},
    "flexible": {},
    "pooled": {"average_embeddings": True},
    "no-causal-mask": {"disable_causal_mask": True},
}


def export(source, out, *extra) -> int:
    return main(
        ["export", "--format", "onnx", "--model", str(source), "--output", str(out), *extra]
    )


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """{setting: (source folder, ONNX folder)}."""
    root = tmp_path_factory.mktemp("onnx-export")
    folders = {}
    for name, fields in HEAD_SETTINGS.items():
        source = random_model(root / name, head_bias=1.0, **fields)
        assert export(source, root / f"{name}-onnx") == 0
        folders[name] = (source, root / f"{name}-onnx")
    return folders


@pytest.mark.parametrize("setting", list(HEAD_SETTINGS))
def test_onnxruntime_gives_torchs_logits_on_padded_batches_of_1_to_32(exports, setting):
    source, out = exports[setting]
    model = GPTForSequenceClassification.from_pretrained(source).eval()
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(0)
    for size in range(1, 33):
        lengths = torch.randint(1, 40, (size,), generator=generator).tolist()
        rows = [torch.randint(0, 50257, (n,), generator=generator).tolist() for n in lengths]
        for side in ("right", "left"):
            ids, mask = pad(rows, side=side)
            with torch.no_grad():
                expected = model(input_ids=ids, attention_mask=mask).logits
            (got,) = session.run(
                ["logits"], {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
            )
            torch.testing.assert_close(torch.from_numpy(got), expected, atol=1e-4, rtol=1e-4)


def test_the_folder_holds_a_graph_with_dynamic_axes_tokenizer_config_and_card(exports):
    source, out = exports["flexible"]
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "config.json", "model.onnx", "tokenizer.json", "tokenizer_config.json",
    ]  # fmt: skip
    graph = onnx.load(str(out / "model.onnx"), load_external_data=False).graph
    for value in graph.input:
        dims = value.type.tensor_type.shape.dim
        assert [bool(d.dim_param) for d in dims] == [True, True], value.name
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "ham", "1": "spam"} and "auto_map" not in config
    assert "onnxruntime" in (out / "README.md").read_text()


def test_a_failed_check_leaves_nothing_behind(exports, tmp_path, capsys, monkeypatch):
    """The graph is checked in the folder written aside: a mismatch writes nothing."""
    import hf_spam.export.onnx as onnx_export

    source, _ = exports["flexible"]
    monkeypatch.setattr(onnx_export, "TOLERANCE", -1.0)  # no difference passes
    assert export(source, tmp_path / "out") == 1
    (line,) = error_lines(capsys.readouterr().err)
    assert "onnxruntime's logits differ from torch's" in line and "not exported" in line
    assert list(tmp_path.iterdir()) == []
