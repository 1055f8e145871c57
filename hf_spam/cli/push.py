"""`hf-spam push`: upload a trained model folder to the Hugging Face Hub, with a model card.

    hf-spam push --model runs/spam --repo_id alice/gpt2-sms-spam --dry_run
    hf-spam push --model runs/spam --repo_id alice/gpt2-sms-spam --private

Uploads model.safetensors, config.json (with auto_map), the modeling code, the tokenizer, the
plots and a README.md rendered from model_card.md for the repo; never checkpoints. --dry_run
builds the exact folder that would be uploaded (in --output_dir, or a temporary folder that is
kept) and lists it. The token comes from --token, HF_TOKEN or `hf auth login`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..files import check_output_dir
from ..hub.sharing import DEFAULT_COMMIT_MESSAGE, format_push_result, push_model_folder
from .arguments import parser_for


@dataclass
class PushArguments:
    """The model folder, the Hub repo, and what is uploaded."""

    _argument_group_name = "upload"

    model: str = field(metadata={"help": "Model folder written by hf-spam train."})
    repo_id: str = field(metadata={"help": "Hub repo to create or update: USER/NAME or ORG/NAME."})
    private: bool = field(
        default=False,
        metadata={"help": "Create the repo private (an existing repo keeps its visibility)."},
    )
    dry_run: bool = field(
        default=False,
        metadata={"help": "Build and list the upload folder; upload nothing (no token needed)."},
    )
    token: str | None = field(
        default=None,
        metadata={
            "help": "Hub token with write access (default: HF_TOKEN, else the stored login)."
        },
    )
    output_dir: str | None = field(
        default=None,
        metadata={
            "help": "Build the upload folder here and keep it (default: a temporary folder, kept "
            "only with --dry_run)."
        },
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Replace a non-empty --output_dir."}
    )
    commit_message: str = field(
        default=DEFAULT_COMMIT_MESSAGE, metadata={"help": "Message of the Hub commit."}
    )
    replace_code: bool = field(
        default=False,
        metadata={
            "help": "Upload the installed hf_spam's configuration.py and modeling.py in place of "
            "the folder's copies, which a push otherwise requires to be hf_spam's own."
        },
    )
    space: str | None = field(
        default=None,
        metadata={
            "help": "Also build (and without --dry_run, push) a Gradio Space USER/NAME running "
            "the demo against --repo_id; its folder is built beside --output_dir (NAME-space)."
        },
    )


def run(argv: list[str]) -> int:
    (args,) = parser_for("push", (PushArguments,), __doc__.split("\n")[0]).parse(argv)
    out = Path(args.output_dir) if args.output_dir else None
    space_dir = out.with_name(f"{out.name}-space") if out and args.space else None
    if args.space:  # before the model goes up: a bad Space id or folder must not leave half a push
        from ..hub.space import check_space_id

        check_space_id(args.space)
        if space_dir:
            check_output_dir(space_dir, args.overwrite_output_dir, flag="the --space folder")
    built_here = out is None or not out.exists() or not any(out.iterdir())
    result = push_model_folder(
        args.model,
        args.repo_id,
        private=args.private,
        token=args.token,
        dry_run=args.dry_run,
        commit_message=args.commit_message,
        upload_dir=args.output_dir,
        overwrite=args.overwrite_output_dir,
        replace_code=args.replace_code,
    )
    print(format_push_result(result))
    if args.space:
        from ..hub.space import format_space_result, push_space

        try:
            space = push_space(
                args.space,
                args.repo_id,
                model_dir=args.model,
                dry_run=args.dry_run,
                output_dir=space_dir,
                overwrite=args.overwrite_output_dir,
                token=args.token,
                private=args.private,
            )
        except BaseException:
            if args.dry_run and built_here:  # nothing went up: the dry run leaves nothing behind
                shutil.rmtree(result.folder, ignore_errors=True)
            raise
        print(format_space_result(space))
    return 0
