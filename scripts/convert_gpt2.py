"""Convert an OpenAI GPT-2 checkpoint into a `save_pretrained` folder of the book's GPT.

    python scripts/convert_gpt2.py --source openai-community/gpt2 --output_dir gpt2-book
    python scripts/convert_gpt2.py --source ./gpt2/model.safetensors --output_dir spam-init \
        --head classification --labels ham,spam
"""

import sys

from hf_spam.cli import main as hf_spam_main


def main(argv: list[str] | None = None) -> int:
    """`hf-spam convert ...`; `argv` defaults to this script's arguments."""
    return hf_spam_main(["convert", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
