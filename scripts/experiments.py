"""Run the book's table of classification experiments (ch06/02_bonus_additional-experiments).

    python scripts/experiments.py --output_dir runs/book --rows 1,4,10
    python scripts/experiments.py --init random --quick --output_dir runs/quick

Same as `hf-spam experiments`; `--help` lists every flag.
"""

import sys

from hf_spam.cli import main as hf_spam_main


def main(argv: list[str] | None = None) -> int:
    """`hf-spam experiments ...`; `argv` defaults to this script's arguments."""
    return hf_spam_main(["experiments", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
