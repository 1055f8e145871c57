"""Fine-tune the book's GPT for text classification with `Trainer`.

    accelerate launch scripts/train.py --output_dir runs/spam          # the book's recipe
    python scripts/train.py --trainable_layers lora --output_dir runs/spam-lora
    torchrun --nproc_per_node 2 scripts/train.py --output_dir runs/spam-ddp   # 2 CPU processes
    accelerate launch scripts/train.py args.json     # every flag in one JSON (or YAML) file

Every `TrainingArguments` flag works (`--bf16`, `--push_to_hub`, ...); `--help` lists them all.
"""

import sys

from hf_spam.cli import main as hf_spam_main


def main(argv: list[str] | None = None) -> int:
    """`hf-spam train ...`; `argv` defaults to this script's arguments."""
    return hf_spam_main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
