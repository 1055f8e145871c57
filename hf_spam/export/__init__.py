"""A trained classifier for tools outside hf_spam: native GPT-2 (`gpt2.py`), ONNX (`onnx.py`)."""

from .gpt2 import export_gpt2
from .onnx import export_onnx

#: `hf-spam export --format` -> the function writing that format.
EXPORT_FORMATS = {"onnx": export_onnx, "gpt2": export_gpt2}

__all__ = ["EXPORT_FORMATS", "export_gpt2", "export_onnx"]
