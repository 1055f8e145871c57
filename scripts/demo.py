"""Try a trained classifier in the browser: a Gradio app over the model (needs the demo extra).

    python scripts/demo.py --model runs/spam                 # http://127.0.0.1:7860
    python scripts/demo.py --model alice/gpt2-sms-spam --host 0.0.0.0 --port 8080

Same as `hf-spam demo`; `--help` lists every flag.
"""

import sys

from hf_spam.cli import main as hf_spam_main


def main(argv: list[str] | None = None) -> int:
    """`hf-spam demo ...`; `argv` defaults to this script's arguments."""
    return hf_spam_main(["demo", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
