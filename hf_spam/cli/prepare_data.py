"""`hf-spam prepare-data`: prepare a data set as chapter 6 of the book does; print a summary.

    hf-spam prepare-data                                  # UCI SMS Spam Collection
    hf-spam prepare-data --dataset ../shared/data/SMSSpamCollection --dedupe
    hf-spam prepare-data --dataset reviews.csv --text_column review --label_column stars \
        --no_balance --padding longest_train --save_to_disk prepared/reviews
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field

from ..data import (
    DataArguments,
    check_save_target,
    format_report,
    prepare_data,
    save_dataset_to_disk,
)
from ..errors import UsageError
from ..files import output_lock
from .arguments import parser_for


@dataclass
class PrepareDataArguments:
    """The model's context length, and where the prepared data set goes."""

    _argument_group_name = "preparation"

    model_context_length: int = field(  # not `context_length`: the book's DataArguments flag
        default=1024, metadata={"help": "The model's context length: texts are truncated to it."}
    )
    save_to_disk: str | None = field(
        default=None, metadata={"help": "Write the tokenized DatasetDict to this directory."}
    )
    overwrite: bool = field(
        default=False, metadata={"help": "Replace a non-empty --save_to_disk directory."}
    )

    def __post_init__(self) -> None:
        if self.model_context_length < 1:
            raise UsageError(
                f"--model_context_length must be positive, got {self.model_context_length}"
            )


def run(argv: list[str]) -> int:
    parser = parser_for(
        "prepare-data", (DataArguments, PrepareDataArguments), __doc__.split("\n")[0]
    )
    data_args, args = parser.parse(argv)
    target = args.save_to_disk
    # --save_to_disk is locked from the start: a second writer is refused before the slow work
    with output_lock(target, "--save_to_disk") if target else nullcontext():
        if target:
            check_save_target(target, args.overwrite)
        prepared = prepare_data(data_args, context_length=args.model_context_length)
        print(format_report(prepared.report))
        if target:
            path = save_dataset_to_disk(prepared.dataset, target, overwrite=args.overwrite)
            print(f"Saved to {path}")
    return 0
