"""Prepare a dataset the way chapter 6 of the book does and print a summary table.

    python scripts/prepare_data.py                                  # UCI SMS Spam Collection
    python scripts/prepare_data.py --dataset ../shared/data/SMSSpamCollection --dedupe
    python scripts/prepare_data.py --dataset reviews.csv --text_column review --label_column stars \
        --no_balance --padding longest_train --save_to_disk prepared/reviews
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from hf_spam.data import (
    DataArguments,
    DataError,
    check_save_target,
    format_report,
    prepare_data,
    save_dataset_to_disk,
)


@dataclass
class ScriptArguments:
    model_context_length: int = (
        field(  # not `context_length`: that is the book's DataArguments flag
            default=1024,
            metadata={"help": "The model's context length: texts are truncated to it."},
        )
    )
    save_to_disk: str | None = field(
        default=None, metadata={"help": "Write the tokenized DatasetDict to this directory."}
    )
    overwrite: bool = field(
        default=False, metadata={"help": "Replace a non-empty --save_to_disk directory."}
    )


def main(argv: list[str] | None = None) -> int:
    parser = HfArgumentParser((DataArguments, ScriptArguments))
    data_args, script_args = parser.parse_args_into_dataclasses(args=argv)
    try:
        if script_args.save_to_disk:
            check_save_target(script_args.save_to_disk, script_args.overwrite)
        prepared = prepare_data(data_args, context_length=script_args.model_context_length)
        print(format_report(prepared.report))
        if script_args.save_to_disk:
            path = save_dataset_to_disk(
                prepared.dataset, script_args.save_to_disk, overwrite=script_args.overwrite
            )
            print(f"Saved to {path}")
    except (DataError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
