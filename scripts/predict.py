"""Classify texts with a trained classifier (folder or Hub repo).

    python scripts/predict.py --model runs/spam "WIN a free prize, call now" "See you at 7"
    cat messages.txt | python scripts/predict.py --model alice/gpt2-sms-spam
    python scripts/predict.py --model runs/spam --input inbox.csv --text_column body \
        --output predictions.jsonl

Texts come from the arguments, else from --input (CSV/TSV column --text_column, JSON lines field
--text_column, any other file one text per line, `-` for stdin), else one per line on stdin.
Prints a table (label, score, text) or writes --output as JSON lines or CSV, by its extension.
"""

import sys

from hf_spam.cli import main as hf_spam_main


def main(argv: list[str] | None = None) -> int:
    """`hf-spam predict ...`; `argv` defaults to this script's arguments."""
    return hf_spam_main(["predict", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
