"""The onnxruntime backend of bulk prediction: an exported `model.onnx` run where torch would be.

`OnnxClassifier` offers what `classify_bulk` reads of a torch classifier (`config`, `device`,
`eval()`, a call on `input_ids` / `attention_mask` that returns `.logits`), so texts go through
the one bulk path (tokenized, length-sorted, batched, scored there) whichever backend runs them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..constants import CONFIG_NAME, TOKENIZER_FILES
from ..errors import ModelLoadError, UsageError
from ..files import read_config
from .files import error_line

#: The file `hf-spam export --format onnx` writes, and its graph's input and output names.
ONNX_MODEL_FILE = "model.onnx"
ONNX_INPUTS = ("input_ids", "attention_mask")
ONNX_OUTPUT = "logits"
BACKENDS = ("torch", "onnxruntime")
#: `--device` -> onnxruntime's execution provider.
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def import_onnxruntime() -> Any:
    """onnxruntime, or a `UsageError` saying how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise UsageError(
            "--backend onnxruntime needs onnxruntime: pip install 'hf_spam[onnx]'"
        ) from None
    return onnxruntime


def provider_for(device: str | None) -> str:
    """The execution provider for `--device` (default: the CPU), if this onnxruntime has it."""
    ort = import_onnxruntime()
    kind = (device or "cpu").split(":")[0]
    provider = PROVIDERS.get(kind)
    available = ort.get_available_providers()
    if provider not in available:
        raise UsageError(f"--device {device}: onnxruntime here runs on {', '.join(available)} only")
    return provider


def check_onnx_folder(folder: str | os.PathLike) -> Path:
    """A folder written by `hf-spam export --format onnx`: model.onnx, config.json, tokenizer."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise ModelLoadError(f"{path}: not a folder; expected an ONNX export folder")
    missing = [name for name in (ONNX_MODEL_FILE, CONFIG_NAME) if not (path / name).is_file()]
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        missing.append("the tokenizer (tokenizer.json)")
    if missing:
        hint = "; write one with hf-spam export --format onnx" if ONNX_MODEL_FILE in missing else ""
        raise ModelLoadError(f"{path}: no {', no '.join(missing)}{hint}")
    read_config(path)  # one line naming config.json if it is not a JSON object
    return path


class OnnxClassifier:
    """An onnxruntime session over `model.onnx`, called as `classify_bulk` calls a model."""

    training = False  # what the bulk path asks of a torch model before eval()

    def __init__(self, folder: Path, config: Any, provider: str = "CPUExecutionProvider"):
        import torch

        ort = import_onnxruntime()
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: the optimizer's notes are not the user's
        try:
            self.session = ort.InferenceSession(
                str(folder / ONNX_MODEL_FILE), options, providers=[provider]
            )
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own untyped errors
            raise ModelLoadError(
                f"{folder / ONNX_MODEL_FILE}: not a usable ONNX model ({error_line(err)})"
            ) from None
        names = [node.name for node in self.session.get_inputs()]
        if sorted(names) != sorted(ONNX_INPUTS):
            raise ModelLoadError(
                f"{folder / ONNX_MODEL_FILE}: inputs {', '.join(names)}; expected "
                f"{', '.join(ONNX_INPUTS)} (not written by hf-spam export?)"
            )
        self.config = config
        self.device = torch.device("cpu")  # inputs are handed over as numpy arrays

    def eval(self) -> OnnxClassifier:
        return self

    def end_of_text_id(self) -> int:
        """The token an empty text reads as: end-of-text, else the pad token, else 0."""
        for token in (self.config.eos_token_id, self.config.pad_token_id):
            if isinstance(token, int) and 0 <= token < self.config.vocab_size:
                return token
        return 0

    def __call__(self, input_ids: Any, attention_mask: Any) -> Any:
        import torch
        from transformers.modeling_outputs import SequenceClassifierOutput

        if input_ids.shape[1] == 0:
            # An empty text reads as the end-of-text token, as in the torch model; a graph's
            # sequence axis cannot be empty.
            input_ids = input_ids.new_full((input_ids.shape[0], 1), self.end_of_text_id())
            attention_mask = torch.ones_like(input_ids)
        feeds = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
        (logits,) = self.session.run([ONNX_OUTPUT], feeds)
        return SequenceClassifierOutput(logits=torch.from_numpy(logits))


def load_onnx_classifier(
    folder: str | os.PathLike, device: str | None = None
) -> tuple[OnnxClassifier, Any]:
    """The exported model on onnxruntime and its tokenizer, for `classify_bulk`."""
    from transformers import AutoConfig, AutoTokenizer

    provider = provider_for(device)
    path = check_onnx_folder(folder)
    config = AutoConfig.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    return OnnxClassifier(path, config, provider), tokenizer


__all__ = [
    "BACKENDS",
    "ONNX_INPUTS",
    "ONNX_MODEL_FILE",
    "ONNX_OUTPUT",
    "OnnxClassifier",
    "check_onnx_folder",
    "load_onnx_classifier",
    "provider_for",
]
