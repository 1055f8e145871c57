"""Fine-tune the book's GPT for text classification with `Trainer`.

    accelerate launch scripts/train.py --output_dir runs/spam          # the book's recipe
    python scripts/train.py --trainable_layers lora --output_dir runs/spam-lora
    torchrun --nproc_per_node 2 scripts/train.py --output_dir runs/spam-ddp   # 2 CPU processes

Every `TrainingArguments` flag works (`--bf16`, `--push_to_hub`, ...); `--help` lists them all.
"""

from __future__ import annotations

import logging
import sys

import transformers
from transformers import HfArgumentParser

from hf_spam.data import DataArguments
from hf_spam.training import ModelArguments, SpamTrainingArguments, format_summary, train


def main(argv: list[str] | None = None) -> None:
    parser = HfArgumentParser((ModelArguments, DataArguments, SpamTrainingArguments))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        level=training_args.get_process_log_level(),
        stream=sys.stdout,
    )
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())
    result = train(model_args, data_args, training_args)
    if result.files:
        print(format_summary(result))


if __name__ == "__main__":
    main()
