"""`hf-spam train`: fine-tune the book's GPT for text classification with `Trainer`.

    accelerate launch -m hf_spam.cli train --output_dir runs/spam     # the book's recipe
    hf-spam train --trainable_layers lora --output_dir runs/spam-lora
    torchrun --nproc_per_node 2 scripts/train.py --output_dir runs/spam-ddp   # 2 CPU processes
    hf-spam train args.json      # every flag in one JSON (or YAML) file, as run_classification.py

Every `TrainingArguments` flag works (`--bf16`, `--push_to_hub`, ...); `--help` lists them all,
by section: model, LoRA, the book's classifier knobs, speed, reporting, data, training.
"""

from __future__ import annotations

import logging
import sys

from ..data import DataArguments
from ..training.run import ModelArguments, SpamTrainingArguments, format_summary, train
from .arguments import parser_for


def run(argv: list[str]) -> int:
    import transformers

    dataclass_types = (ModelArguments, DataArguments, SpamTrainingArguments)
    parser = parser_for("train", dataclass_types, __doc__.split("\n")[0], argument_file=True)
    model_args, data_args, training_args = parser.parse(argv)
    level = training_args.get_process_log_level()
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=level, stream=sys.stdout
    )
    transformers.utils.logging.set_verbosity(level)
    result = train(model_args, data_args, training_args)
    if result.files:
        print(format_summary(result))
    return 0
