"""`hf-spam export`: a trained classifier for tools outside hf_spam: ONNX or native GPT-2.

    hf-spam export --format onnx --model runs/spam --output runs/spam-onnx
    hf-spam export --format gpt2 --model runs/spam --output runs/spam-gpt2

`onnx` writes model.onnx (dynamic batch and sequence axes) beside the tokenizer, config and a
card note, for onnxruntime (`hf-spam predict --backend onnxruntime --model runs/spam-onnx`).
`gpt2` writes transformers' own `GPT2ForSequenceClassification` folder, loadable without
remote code; the settings GPT-2's head cannot express are refused, naming the setting.
Either output is checked against the model on padded batches, written aside and moved into place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..export import EXPORT_FORMATS
from ..files import check_output_dir
from .arguments import parser_for


@dataclass
class ExportArguments:
    """The model folder, the format, and the folder to write."""

    _argument_group_name = "export"

    format: str = field(
        metadata={
            "help": "onnx (model.onnx for onnxruntime) or gpt2 (transformers' native "
            "GPT2ForSequenceClassification, no remote code)",
            "choices": list(EXPORT_FORMATS),
        }
    )
    model: str = field(metadata={"help": "Model folder written by hf-spam train."})
    output: str = field(metadata={"help": "Folder to write (refused if not empty)."})
    overwrite: bool = field(default=False, metadata={"help": "Replace a non-empty --output."})

    def __post_init__(self) -> None:
        check_output_dir(self.output, self.overwrite, flag="--output", overwrite_flag="--overwrite")


def run(argv: list[str]) -> int:
    (args,) = parser_for("export", (ExportArguments,), __doc__.split("\n")[0]).parse(argv)
    written = EXPORT_FORMATS[args.format](args.model, args.output, args.overwrite)
    print(f"Wrote the {args.format} export of {args.model} to {written}")
    return 0
