"""Serve a trained classifier over HTTP: TEI's POST /predict and the Inference API's text
classification (needs the serve extra).

    python scripts/serve.py --model runs/spam                 # http://127.0.0.1:8080
    python scripts/serve.py --model alice/gpt2-sms-spam --host 0.0.0.0 --port 9000

Same as `hf-spam serve`; `--help` lists every flag.
"""

import sys

from hf_spam.cli import main as hf_spam_main


def main(argv: list[str] | None = None) -> int:
    """`hf-spam serve ...`; `argv` defaults to this script's arguments."""
    return hf_spam_main(["serve", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
