"""Export a trained classifier as ONNX (for onnxruntime) or as transformers' native GPT-2.

python scripts/export_model.py --format onnx --model runs/spam --output runs/spam-onnx
python scripts/export_model.py --format gpt2 --model runs/spam --output runs/spam-gpt2
"""

import sys

from hf_spam.cli import main as hf_spam_main


def main(argv: list[str] | None = None) -> int:
    """`hf-spam export ...`; `argv` defaults to this script's arguments."""
    return hf_spam_main(["export", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
