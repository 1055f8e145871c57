"""The exportable forward: one padded pass with masks as tensors, for graphs.

It must give the default path's numbers (which the other model tests hold against transformers'
GPT-2) on every head setting, and leave nothing data-dependent for `torch.export`,
`torch.compile` and the ONNX exporter: exported programs run on batches and lengths they were
not traced on, a compiled training step and inference compile a bounded number of graphs
however many batch shapes follow, with no graph break, and onnxruntime gives torch's logits.
"""

from __future__ import annotations

import pytest
import torch
from torch.export import Dim

from hf_spam import GPTConfig, GPTForCausalLM, GPTForSequenceClassification, GPTModel

PAD = 99
TINY = dict(vocab_size=100, context_length=32, emb_dim=16, n_heads=2, n_layers=2, pad_token_id=PAD)
HEADS = {
    "flexible": {},
    "flexible-bidirectional": {"disable_causal_mask": True},
    "flexible-average": {"average_embeddings": True},
    "last": {"trainable_token_pos": "last"},
    "first": {"trainable_token_pos": "first"},
    "last-padded": {"trainable_token_pos": "last", "padded_length": 12},
    "first-padded-bidirectional": {
        "trainable_token_pos": "first",
        "padded_length": 12,
        "disable_causal_mask": True,
    },
    "last-padded-average": {
        "trainable_token_pos": "last",
        "padded_length": 12,
        "average_embeddings": True,
    },
}
SHAPES = [(1, 1), (5, 9), (3, 20), (7, 4), (2, 32)]


def batch(size: int, length: int, side: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random ids and a padding mask: row 0 full, the others of random lengths, one empty when
    there are enough rows."""
    g = torch.Generator().manual_seed(seed * 1000 + size * 50 + length)
    ids = torch.randint(0, PAD, (size, length), generator=g)
    lengths = torch.randint(0, length + 1, (size,), generator=g)
    lengths[0] = length
    if size > 3:
        lengths[3] = 0
    positions = torch.arange(length)[None, :]
    real = (
        positions < lengths[:, None] if side == "right" else positions >= length - lengths[:, None]
    )
    return ids.masked_fill(~real, PAD), real.long()


def model_of(cls, **knobs):
    torch.manual_seed(0)
    return cls(GPTConfig(**TINY, **knobs, num_labels=2)).eval()


def both_paths(model, **inputs):
    """The default path's output, then the exportable path's (`config.exportable`)."""
    with torch.no_grad():
        default = model(**inputs)
        model.config.exportable = True
        try:
            exportable = model(**inputs)
        finally:
            model.config.exportable = False
    return default, exportable


@pytest.mark.parametrize("head", HEADS)
def test_exportable_path_gives_the_default_logits(head):
    model = model_of(GPTForSequenceClassification, **HEADS[head])
    for side in ("left", "right"):
        for size, length in SHAPES:
            ids, mask = batch(size, length, side)
            labels = torch.arange(size) % 2
            default, exportable = both_paths(
                model, input_ids=ids, attention_mask=mask, labels=labels
            )
            torch.testing.assert_close(exportable.logits, default.logits, atol=1e-5, rtol=0)
            torch.testing.assert_close(exportable.loss, default.loss, atol=1e-5, rtol=0)


def test_exportable_path_resumes_from_block_inputs():
    """The frozen trunk's cached states (`block_inputs`, `start_block`) read the same way."""
    model = model_of(GPTForSequenceClassification)
    ids, mask = batch(6, 10, "right")
    with torch.no_grad():
        states = model.gpt(input_ids=ids, attention_mask=mask, stop_block=1).last_hidden_state
    for start in (1, 2):
        cached = states if start == 1 else model.gpt.trf_blocks[1](states, None)[0]
        default, exportable = both_paths(
            model, block_inputs=cached, attention_mask=mask, start_block=start
        )
        torch.testing.assert_close(exportable.logits, default.logits, atol=1e-5, rtol=0)


@pytest.mark.parametrize("cls", [GPTModel, GPTForCausalLM])
def test_exportable_path_gives_the_default_states_at_every_position(cls):
    """Padding positions included: the exportable path reads a right-padded causal batch as the
    default path does, from the causal triangle."""
    model = model_of(cls)
    for side in ("left", "right"):
        ids, mask = batch(5, 9, side)
        default, exportable = both_paths(model, input_ids=ids, attention_mask=mask)
        name = "last_hidden_state" if cls is GPTModel else "logits"
        torch.testing.assert_close(
            getattr(exportable, name), getattr(default, name), atol=1e-5, rtol=0
        )


def dynamic(length: int = TINY["context_length"]) -> dict:
    dims = {0: Dim("batch"), 1: Dim("sequence", max=length)}
    return {"input_ids": dims, "attention_mask": dims}


@pytest.mark.parametrize("head", ["flexible", "last-padded", "flexible-average"])
def test_torch_export_with_dynamic_batch_and_sequence(head):
    model = model_of(GPTForSequenceClassification, **HEADS[head])
    ids, mask = batch(5, 9, "left")
    program = torch.export.export(
        model, (), {"input_ids": ids, "attention_mask": mask}, dynamic_shapes=dynamic()
    )
    exported = program.module()
    for side in ("left", "right"):
        for size, length in SHAPES:
            ids, mask = batch(size, length, side, seed=1)
            with torch.no_grad():
                expected = model(input_ids=ids, attention_mask=mask).logits
            got = exported(input_ids=ids, attention_mask=mask).logits
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("strict", [False, True])
def test_torch_export_of_the_trunk(strict):
    model = model_of(GPTModel)
    ids, mask = batch(5, 9, "left")
    program = torch.export.export(
        model,
        (),
        {"input_ids": ids, "attention_mask": mask},
        dynamic_shapes=dynamic(),
        strict=strict,
    )
    for size, length in [(2, 3), (8, 17)]:
        ids, mask = batch(size, length, "right", seed=2)
        with torch.no_grad():
            expected = model(input_ids=ids, attention_mask=mask).last_hidden_state
        got = program.module()(input_ids=ids, attention_mask=mask).last_hidden_state
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


class CountingBackend:
    """A `torch.compile` backend that runs each graph as captured and counts them: every
    compilation, first or recompilation, of every piece between graph breaks, is one."""

    def __init__(self):
        self.graphs = 0

    def __call__(self, graph_module, example_inputs):
        self.graphs += 1
        return graph_module.forward


def test_compiled_training_and_inference_stop_recompiling():
    """After the first shapes (one static graph, then one with dynamic sizes) new batch shapes
    reuse the graphs: no recompile per batch, and no graph break."""
    torch._dynamo.reset()
    from torch._dynamo.utils import counters

    counters.clear()
    model = model_of(GPTForSequenceClassification)
    backend = CountingBackend()
    compiled = torch.compile(model, backend=backend)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    graphs_after = []
    for step, length in enumerate([11, 17, 9, 23, 14, 30, 12, 19]):
        ids, mask = batch(8, length, "right", seed=step)
        loss = compiled(input_ids=ids, attention_mask=mask, labels=torch.arange(8) % 2).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        graphs_after.append(backend.graphs)
    assert graphs_after[-1] <= 2 and graphs_after[2] == graphs_after[-1], graphs_after
    model.eval()
    graphs_after = []
    with torch.no_grad():
        for step, (size, length) in enumerate(
            [(16, 13), (16, 21), (5, 9), (16, 31), (3, 7), (11, 25)]
        ):
            ids, mask = batch(size, length, "left", seed=step)
            expected = model(input_ids=ids, attention_mask=mask).logits
            got = compiled(input_ids=ids, attention_mask=mask).logits
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
            graphs_after.append(backend.graphs)
    assert graphs_after[-1] - graphs_after[0] <= 2 and graphs_after[3] == graphs_after[-1], (
        graphs_after
    )
    assert not counters["graph_break"], dict(counters["graph_break"])
    torch._dynamo.reset()


def test_a_traced_model_runs_on_other_batches():
    """`torch.jit.trace` records the exportable path, so the trace holds beyond its batch."""
    model = model_of(GPTForSequenceClassification)
    model.config.return_dict = False
    ids, mask = batch(5, 9, "left")
    with torch.no_grad():
        traced = torch.jit.trace(model, (ids, mask))
        for size, length in [(2, 3), (8, 17)]:
            ids, mask = batch(size, length, "right", seed=3)
            torch.testing.assert_close(traced(ids, mask)[0], model(ids, mask)[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("head", ["flexible", "last-padded", "first-padded-bidirectional"])
def test_onnx_export_runs_in_onnxruntime(head, tmp_path):
    pytest.importorskip("onnxscript")
    onnxruntime = pytest.importorskip("onnxruntime")
    model = model_of(GPTForSequenceClassification, **HEADS[head])
    ids, mask = batch(5, 9, "left")
    path = tmp_path / "model.onnx"
    torch.onnx.export(
        model,
        (),
        str(path),
        kwargs={"input_ids": ids, "attention_mask": mask},
        dynamo=True,
        dynamic_shapes=dynamic(),
        input_names=["input_ids", "attention_mask"],
        output_names=["logits"],
        verbose=False,
    )
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for side in ("left", "right"):
        for size in (1, 2, 7, 32):
            for length in (1, 6, 32):
                ids, mask = batch(size, length, side, seed=4)
                with torch.no_grad():
                    expected = model(input_ids=ids, attention_mask=mask).logits
                (logits,) = session.run(
                    ["logits"], {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
                )
                torch.testing.assert_close(torch.from_numpy(logits), expected, atol=1e-4, rtol=0)
