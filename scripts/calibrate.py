"""Fit a trained classifier's temperature and decision threshold on the validation split.

    python scripts/calibrate.py --model runs/spam --target_precision 0.99
    python scripts/calibrate.py --model runs/spam --cost_ratio 10

Writes `temperature` and `decision_threshold` into the model's config.json (see
`hf-spam calibrate --help` and docs/operating-point.md).
"""

import sys

from hf_spam.cli import main as hf_spam_main


def main(argv: list[str] | None = None) -> int:
    """`hf-spam calibrate ...`; `argv` defaults to this script's arguments."""
    return hf_spam_main(["calibrate", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
