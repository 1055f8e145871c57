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

from hf_spam.data import DataArguments, DataError
from hf_spam.sharing import HubError
from hf_spam.training import (
    ModelArguments,
    SpamTrainingArguments,
    TrainingSetupError,
    format_summary,
    train,
)
from hf_spam.weights import CheckpointError

# Problems with the user's input: a one-line message, not a traceback.
USER_ERRORS = (TrainingSetupError, DataError, CheckpointError, HubError, FileExistsError)


def main(argv: list[str] | None = None) -> int:
    parser = HfArgumentParser((ModelArguments, DataArguments, SpamTrainingArguments))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        level=training_args.get_process_log_level(),
        stream=sys.stdout,
    )
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())
    try:
        result = train(model_args, data_args, training_args)
    except USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if result.files:
        print(format_summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
