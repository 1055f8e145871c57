"""The benchmark tables: `hf-spam benchmark speed|bulk|scale`.

    python scripts/benchmark.py speed --dataset ../shared/data/SMSSpamCollection          # full
    python scripts/benchmark.py speed --dataset ../shared/data/SMSSpamCollection --quick  # reduced
    python scripts/benchmark.py bulk --dataset ../shared/data/SMSSpamCollection
    python scripts/benchmark.py scale --quick

Without a table the speed table runs, as before (`--bulk` / `--scale` name the other two). See
`hf_spam/benchmarks/speed.py` for what each row measures.
"""

import sys

from hf_spam.cli import main as hf_spam_main


def main(argv: list[str] | None = None) -> int:
    """`hf-spam benchmark ...`; `argv` defaults to this script's arguments."""
    return hf_spam_main(["benchmark", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
