"""`hf-spam predict`: classify texts with a trained classifier (folder or Hub repo).

    hf-spam predict --model runs/spam "WIN a free prize, call now" "See you at 7"
    cat messages.txt | hf-spam predict --model alice/gpt2-sms-spam
    hf-spam predict --model runs/spam --input inbox.csv --text_column body \
        --output predictions.jsonl

Texts come from the arguments, else from --input (CSV/TSV column --text_column, JSON lines field
--text_column, any other file one text per line, `-` for stdin), else one per line on stdin.
Prints a table (label, score, text) or writes --output as JSON lines or CSV, by its extension.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import OutputExistsError, UsageError
from ..inference import (
    PREDICTION_FORMATS,
    InferenceArguments,
    Prediction,
    classify,
    load_classifier,
    one_line,
    read_texts,
    write_predictions,
)
from ..reporting import format_table
from .arguments import ArgumentParser, parser_for


@dataclass
class PredictArguments:
    model: str = field(metadata={"help": "Model folder (from hf-spam train) or Hub repo id."})
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

    def __post_init__(self) -> None:
        if self.output is None:
            return
        path = Path(self.output)
        if path.suffix.lower() not in PREDICTION_FORMATS:
            raise UsageError(f"--output {path}: use a {' or '.join(PREDICTION_FORMATS)} file name")
        if path.is_dir():
            raise OutputExistsError(f"--output {path} is a folder; give a file name")
        if path.exists() and not self.overwrite:
            raise OutputExistsError(f"--output {path} exists; pass --overwrite to replace it")


def build_parser() -> ArgumentParser:
    parser = parser_for("predict", (PredictArguments, InferenceArguments), __doc__.split("\n")[0])
    parser.add_argument(
        "texts", nargs="*", metavar="TEXT", help="Texts to classify (else --input or stdin)."
    )
    return parser


def _gather_texts(args: PredictArguments, texts: list[str]) -> list[str]:
    if texts and args.input:
        raise UsageError("give texts as arguments or --input, not both")
    if not texts and not args.input and sys.stdin.isatty():
        raise UsageError("no texts: give them as arguments, with --input FILE, or on stdin")
    if not texts:
        texts = read_texts(args.input or "-", text_column=args.text_column)
    if not texts:
        from ..errors import DataError

        raise DataError(f"no texts in {args.input or 'stdin'}")
    return texts


def format_predictions(predictions: list[Prediction], *, width: int = 70) -> str:
    """A plain-text table: label, score, text (shortened to `width` characters)."""
    return format_table(
        [{"label": p.label, "score": p.score, "text": one_line(p.text, width)} for p in predictions]
    )


def run(argv: list[str]) -> int:
    args, inference_args, positional = build_parser().parse(argv)
    texts = _gather_texts(args, positional.texts)
    classifier = load_classifier(args.model, **asdict(inference_args))
    predictions = classify(
        classifier, texts, batch_size=inference_args.batch_size, progress=args.progress
    )
    if args.output:
        write_predictions(predictions, args.output)
        print(f"Wrote {len(predictions)} predictions to {args.output}")
    else:
        print(format_predictions(predictions))
    return 0
