"""`hf-spam benchmark`: the book's fine-tuning workload, the plain approach vs hf_spam, one table.

    hf-spam benchmark --dataset ../shared/data/SMSSpamCollection          # full
    hf-spam benchmark --dataset ../shared/data/SMSSpamCollection --quick  # < 2 min

See `hf_spam/benchmark.py` for what each row measures.
"""

from __future__ import annotations

from .arguments import parser_for


def run(argv: list[str]) -> int:
    from ..benchmark import BenchmarkArguments, main

    # Parsed here first so bad flags take the one error path; benchmark.main parses them again
    # (it is also its own per-row subprocess entry point).
    parser_for("benchmark", (BenchmarkArguments,), __doc__.split("\n")[0]).parse(argv)
    main(argv)
    return 0
