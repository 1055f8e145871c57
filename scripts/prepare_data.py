"""Prepare a dataset the way chapter 6 of the book does and print a summary table.

    python scripts/prepare_data.py                                  # UCI SMS Spam Collection
    python scripts/prepare_data.py --dataset ../shared/data/SMSSpamCollection --dedupe
    python scripts/prepare_data.py --dataset reviews.csv --text_column review --label_column stars \
        --no_balance --padding longest_train --save_to_disk prepared/reviews
"""

import sys

from hf_spam.cli import main as hf_spam_main


def main(argv: list[str] | None = None) -> int:
    """`hf-spam prepare-data ...`; `argv` defaults to this script's arguments."""
    return hf_spam_main(["prepare-data", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
