"""Benchmark the book's fine-tuning workload: the plain approach vs hf_spam, in one table.

    python scripts/benchmark.py --dataset ../shared/data/SMSSpamCollection          # full
    python scripts/benchmark.py --dataset ../shared/data/SMSSpamCollection --quick  # < 2 min

See `hf_spam/benchmarks/speed.py` for what each row measures.
"""

import sys

from hf_spam.cli import main as hf_spam_main


def main(argv: list[str] | None = None) -> int:
    """`hf-spam benchmark ...`; `argv` defaults to this script's arguments."""
    return hf_spam_main(["benchmark", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
