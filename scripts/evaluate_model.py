"""Evaluate a trained classifier (folder or Hub repo) and write a report.

    python scripts/evaluate_model.py --model runs/spam --output_dir runs/spam/eval   # SMS test split
    python scripts/evaluate_model.py --model runs/spam --dataset ../shared/data/SMSSpamCollection \
        --output_dir eval --errors 10 --compare runs/spam-lora
    python scripts/evaluate_model.py --model alice/gpt2-sms-spam --dataset new_messages.csv \
        --split all --output_dir eval-new

Runs `evaluate.evaluator("text-classification")` with the package's metric module and writes
`eval_report.json`, `eval_report.md`, `confusion-matrix.png` and `predictions.jsonl` (one per
model with --compare). `--split train|validation|test` rebuilds that split of --dataset exactly as
training does (same --balance, --split_fractions, --split_seed); `--split all` takes every row.
"""

import sys

from hf_spam.cli import main as hf_spam_main


def main(argv: list[str] | None = None) -> int:
    """`hf-spam evaluate ...`; `argv` defaults to this script's arguments."""
    return hf_spam_main(["evaluate", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
