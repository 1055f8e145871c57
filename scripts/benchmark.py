"""Benchmark the book's fine-tuning workload: the plain approach vs hf_spam, in one table.

    python scripts/benchmark.py --dataset ../shared/data/SMSSpamCollection          # full
    python scripts/benchmark.py --dataset ../shared/data/SMSSpamCollection --quick  # < 2 min

See `hf_spam/benchmark.py` for what each row measures.
"""

from hf_spam.benchmark import main

if __name__ == "__main__":
    main()
