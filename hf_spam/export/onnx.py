"""A trained hf_spam classifier as `model.onnx`, for onnxruntime and the tools that read ONNX.

The graph is torch's own exporter's (`torch.onnx.export(dynamo=True)`, through `torch.export`):
inputs `input_ids` and `attention_mask` (int64, `(batch, sequence)`, both axes dynamic up to the
context), output `logits` `(batch, num_labels)`, whatever head setting the model was trained
with. Before anything is written, onnxruntime runs the graph on left- and right-padded probe
batches and its logits are compared with torch's; the folder gets the model's `config.json`
(labels, temperature, decision threshold: what `hf-spam predict --backend onnxruntime` reads),
its tokenizer and a card note, written aside and moved into place.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..constants import CONFIG_NAME
from ..files import atomic_output_dir, write_json, writing
from ..inference.onnx import ONNX_INPUTS, ONNX_MODEL_FILE, ONNX_OUTPUT, import_onnxruntime
from .source import ExportError, load_source, padded, probe_rows, worst_difference, write_card_note

#: The largest difference of onnxruntime's logits from torch's (relative to 1 + their size).
TOLERANCE = 1e-4
#: The example batch the graph is traced on: 2 x 8 so neither axis is taken for a constant 1.
EXAMPLE_SHAPE = (2, 8)
ONNX_USAGE = """
import onnxruntime, numpy as np
from transformers import AutoTokenizer

session = onnxruntime.InferenceSession("{folder}/model.onnx")
tokenizer = AutoTokenizer.from_pretrained("{folder}")
batch = tokenizer(["WIN a free prize, call now"], return_tensors="np", padding=True)
logits = session.run(["logits"], {{k: batch[k].astype(np.int64) for k in ("input_ids", "attention_mask")}})[0]
"""


class LogitsOnly(nn.Module):
    """The classifier as the graph sees it: two tensors in, the logits out."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def root_cause(err: BaseException) -> BaseException:
    """The innermost exception of a chain: the exporter wraps what stopped it in its own."""
    while err.__cause__ is not None:
        err = err.__cause__
    return err


def onnx_program(model: Any, path: Path) -> Any:
    """The `ONNXProgram` of the classifier, batch and sequence axes dynamic; a forward that
    torch.export cannot trace is one `ExportError` line naming what stopped it."""
    from torch.export import Dim

    batch = Dim("batch")
    sequence = Dim("sequence", max=model.config.context_length)
    axes = {name: {0: batch, 1: sequence} for name in ONNX_INPUTS}
    ids = torch.randint(0, model.config.vocab_size, EXAMPLE_SHAPE)
    mask = torch.ones_like(ids)
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # its notes on its own passes are not the user's
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            return torch.onnx.export(
                LogitsOnly(model).eval(),
                (ids, mask),
                dynamo=True,
                input_names=list(ONNX_INPUTS),
                output_names=[ONNX_OUTPUT],
                dynamic_shapes=axes,
                verbose=False,
            )
    except Exception as err:  # noqa: BLE001 - the exporter raises many kinds
        cause = root_cause(err)
        reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        raise ExportError(
            f"--format onnx: torch.export cannot trace the forward of {path} "
            f"({type(cause).__name__}: {reason})"
        ) from err
    finally:
        exporter_log.setLevel(level)


@torch.no_grad()
def check_onnx_logits(model: Any, tokenizer: Any, file: Path) -> float:
    """onnxruntime's logits against torch's on left- and right-padded probe batches; the
    largest difference, refused above `TOLERANCE`."""
    ort = import_onnxruntime()
    session = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"])
    rows = probe_rows(model.config, avoid=None)
    worst = 0.0
    for side in ("right", "left"):
        batch = padded(tokenizer, rows, side)
        expected = model(**batch).logits
        (got,) = session.run([ONNX_OUTPUT], {k: v.numpy() for k, v in batch.items()})
        difference = worst_difference(expected, torch.from_numpy(got))
        if difference > TOLERANCE:
            raise ExportError(
                f"--format onnx: onnxruntime's logits differ from torch's by {difference:.2e} on "
                f"{side}-padded probes (tolerance {TOLERANCE}); not exported"
            )
        worst = max(worst, difference)
    return worst


def export_onnx(folder: str, output: str, overwrite: bool = False) -> Path:
    """Write the ONNX folder of the classifier in `folder` to `output` (written aside, moved
    into place when complete); returns `output`."""
    import_onnxruntime()  # before the slow export: the check needs it
    model, tokenizer, path = load_source(folder)
    out = Path(output)
    kept = f"{out} is left as it was"
    with atomic_output_dir(out, overwrite, flag="--output", overwrite_flag="--overwrite") as tmp:
        program = onnx_program(model, path)
        writing(out / ONNX_MODEL_FILE, lambda: program.save(str(tmp / ONNX_MODEL_FILE)), kept)
        check_onnx_logits(model, tokenizer, tmp / ONNX_MODEL_FILE)
        config = model.config.to_dict()
        config.pop("auto_map", None)  # the modeling code does not travel with the graph
        writing(out / CONFIG_NAME, lambda: write_json(tmp / CONFIG_NAME, config), kept)
        tokenizer.model_max_length = model.config.context_length
        writing(out / "tokenizer.json", lambda: tokenizer.save_pretrained(tmp), kept)
        notes = [
            "Inputs `input_ids` and `attention_mask` (int64, batch x sequence, both dynamic up "
            f"to {model.config.context_length} tokens); output `logits` (batch x "
            f"{model.config.num_labels}).",
            f"Head setting: `trainable_token_pos={model.config.trainable_token_pos}`"
            + (", `average_embeddings`" if model.config.average_embeddings else "")
            + (", `disable_causal_mask`" if model.config.disable_causal_mask else "")
            + "; batches padded on either side give torch's logits (checked at export).",
            "`hf-spam predict --backend onnxruntime --model <this folder>` classifies with it.",
        ]
        usage = ONNX_USAGE.format(folder=out.name)
        write_card_note(tmp, path, model.config, "ONNX", usage, notes, ["onnx", "hf_spam"])
    return out
