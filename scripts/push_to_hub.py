"""Upload a trained model folder to the Hugging Face Hub, with a model card for the repo.

    python scripts/push_to_hub.py --model runs/spam --repo_id alice/gpt2-sms-spam --dry_run
    python scripts/push_to_hub.py --model runs/spam --repo_id alice/gpt2-sms-spam --private

Uploads model.safetensors, config.json (with auto_map), the modeling code, the tokenizer, the
plots and a README.md rendered from model_card.md for the repo; never checkpoints. --dry_run
builds the exact folder that would be uploaded (in --output_dir, or a temporary folder that is
kept) and lists it. The token comes from --token, HF_TOKEN or `hf auth login`.
"""

import sys

from hf_spam.cli import main as hf_spam_main


def main(argv: list[str] | None = None) -> int:
    """`hf-spam push ...`; `argv` defaults to this script's arguments."""
    return hf_spam_main(["push", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
