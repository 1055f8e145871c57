"""Classify texts with a trained classifier (folder or Hub repo).

    python scripts/predict.py --model runs/spam "WIN a free prize, call now" "See you at 7"
    cat messages.txt | python scripts/predict.py --model alice/gpt2-sms-spam
    python scripts/predict.py --model runs/spam --input inbox.csv --text_column body \
        --output predictions.jsonl

Texts come from the arguments, else from --input (CSV/TSV column --text_column, JSON lines field
--text_column, any other file one text per line, `-` for stdin), else one per line on stdin.
Prints a table (label, score, text) or writes --output as JSON lines or CSV, by its extension.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

from hf_spam.data import DataError
from hf_spam.inference import (
    PREDICTION_FORMATS,
    InferenceArguments,
    ModelLoadError,
    classify,
    format_predictions,
    load_classifier,
    read_texts,
    write_predictions,
)


@dataclass
class PredictArguments:
    model: str = field(metadata={"help": "Model folder (from scripts/train.py) or Hub repo id."})
    input: str | None = field(
        default=None,
        metadata={
            "help": "File of texts: CSV/TSV (column --text_column), JSON lines (field "
            "--text_column), anything else one text per line; '-' reads stdin."
        },
    )
    text_column: str = field(
        default="text", metadata={"help": "Column or field holding the texts in --input."}
    )
    output: str | None = field(
        default=None,
        metadata={
            "help": f"Write predictions here ({' or '.join(PREDICTION_FORMATS)}, by extension) "
            "instead of printing a table."
        },
    )
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing --output."})
    progress: bool | None = field(
        default=None,
        metadata={"help": "Show a progress bar (default: when there are more than 64 texts)."},
    )


def build_parser() -> HfArgumentParser:
    parser = HfArgumentParser((PredictArguments, InferenceArguments))
    parser.add_argument(
        "texts", nargs="*", metavar="TEXT", help="Texts to classify (else --input or stdin)."
    )
    return parser


def _check_output(args: PredictArguments) -> None:
    if args.output is None:
        return
    path = Path(args.output)
    if path.suffix.lower() not in PREDICTION_FORMATS:
        raise DataError(f"--output {path}: use a {' or '.join(PREDICTION_FORMATS)} file name")
    if path.exists() and not args.overwrite:
        raise FileExistsError(f"--output {path} exists; pass --overwrite to replace it")


def _gather_texts(args: PredictArguments, texts: list[str]) -> list[str]:
    if texts and args.input:
        raise DataError("give texts as arguments or --input, not both")
    if not texts and not args.input and sys.stdin.isatty():
        raise DataError("no texts: give them as arguments, with --input FILE, or on stdin")
    if not texts:
        texts = read_texts(args.input or "-", text_column=args.text_column)
    if not texts:
        raise DataError(f"no texts in {args.input or 'stdin'}")
    return texts


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, inference_args, positional = parser.parse_args_into_dataclasses(args=argv)
    except ValueError as err:  # arguments argparse could not place, e.g. a mistyped flag
        parser.error(str(err))
    try:
        _check_output(args)
        texts = _gather_texts(args, positional.texts)
        classifier = load_classifier(args.model, **asdict(inference_args))
        predictions = classify(
            classifier, texts, batch_size=inference_args.batch_size, progress=args.progress
        )
        if args.output:
            write_predictions(predictions, args.output)
    except (ModelLoadError, DataError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.output:
        print(f"Wrote {len(predictions)} predictions to {args.output}")
    else:
        print(format_predictions(predictions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
