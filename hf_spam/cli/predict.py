"""`hf-spam predict`: classify texts with a trained classifier (folder or Hub repo).

    hf-spam predict --model runs/spam "WIN a free prize, call now" "See you at 7"
    cat messages.txt | hf-spam predict --model alice/gpt2-sms-spam
    hf-spam predict --model runs/spam --input inbox.csv --text_column body \
        --output predictions.jsonl

Texts come from the arguments, else from --input (CSV/TSV column --text_column, JSON lines field
--text_column, any other file one text per line, `-` for stdin), else one per line on stdin.
Prints a table (label, score, text) or writes --output as JSON lines or CSV, by its extension.

Texts take the bulk path (`hf_spam.inference.bulk`): read lazily, tokenized and run in length-sorted
batches of --batch_size, --window_size texts at a time, predictions written as they come, so a
file of millions of lines runs in constant memory. `--use_pipeline` sends them through
`pipeline()` text by text instead (the same results, slower; for comparison).
`--backend onnxruntime` runs the bulk path on a folder written by `hf-spam export --format onnx`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataError, OutputExistsError, UsageError
from ..files import output_lock
from ..inference.bulk import DEFAULT_WINDOW_SIZE, check_window_size, classify_bulk
from ..inference.files import PREDICTION_FORMATS, iter_texts, write_predictions
from ..inference.load import InferenceArguments, Prediction, classify, load_classifier, one_line
from ..inference.onnx import BACKENDS, load_onnx_classifier
from ..reporting import format_table
from .arguments import ArgumentParser, parser_for


@dataclass
class PredictArguments:
    """Which model, which texts, and where the predictions go."""

    _argument_group_name = "prediction"

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
    use_pipeline: bool = field(
        default=False,
        metadata={
            "help": "Classify through pipeline() text by text (same results, slower; for "
            "comparison) instead of the bulk path."
        },
    )
    window_size: int = field(
        default=DEFAULT_WINDOW_SIZE,
        metadata={"help": "Texts read, length-sorted and written at a time on the bulk path."},
    )
    backend: str = field(
        default="torch",
        metadata={
            "help": "What runs the bulk path: torch, or onnxruntime on a folder written by "
            "hf-spam export --format onnx.",
            "choices": list(BACKENDS),
        },
    )

    def __post_init__(self) -> None:
        check_window_size(self.window_size)
        if self.backend != "torch" and self.use_pipeline:
            raise UsageError(f"--use_pipeline runs torch; it cannot take --backend {self.backend}")
        if self.output is None:
            return
        path = Path(self.output)
        if path.suffix.lower() not in PREDICTION_FORMATS:
            raise UsageError(f"--output {path}: use a {' or '.join(PREDICTION_FORMATS)} file name")
        if path.is_dir():
            raise OutputExistsError(f"--output {path} is a folder; give a file name")
        if _same_file(self.input, path):  # written aside and renamed: the input would be lost
            raise UsageError(
                f"--output {path} is the --input file; write the predictions to another file"
            )
        if path.exists() and not self.overwrite:
            raise OutputExistsError(f"--output {path} exists; pass --overwrite to replace it")


def _same_file(input: str | None, output: Path) -> bool:
    """Whether `output` is the `input` file under another name (a relative path, a symlink,
    a hard link): both exist and are one file."""
    if not input or input == "-" or not output.exists():
        return False
    try:
        return Path(input).expanduser().samefile(output)
    except OSError:  # no such --input: reported as such when it is read
        return False


def build_parser() -> ArgumentParser:
    parser = parser_for("predict", (PredictArguments, InferenceArguments), __doc__.split("\n")[0])
    parser.add_argument(
        "texts", nargs="*", metavar="TEXT", help="Texts to classify (else --input or stdin)."
    )
    return parser


def _text_source(args: PredictArguments, texts: list[str]) -> Iterable[str]:
    """The texts to classify: the arguments, else --input or stdin read lazily (a missing file or
    column fails here, before the model loads)."""
    if texts and args.input:
        raise UsageError("give texts as arguments or --input, not both")
    if not texts and not args.input and (sys.stdin is None or sys.stdin.isatty()):
        closed = " (stdin is closed)" if sys.stdin is None else ""
        raise UsageError(
            f"no texts: give them as arguments, with --input FILE, or on stdin{closed}"
        )
    return texts or iter_texts(args.input or "-", text_column=args.text_column)


class _Counted:
    """Passes predictions through, counting them; none at all is an error (an empty input)."""

    def __init__(self, predictions: Iterable[Prediction], source: str) -> None:
        self.predictions, self.source, self.count = predictions, source, 0

    def __iter__(self) -> Iterator[Prediction]:
        for prediction in self.predictions:
            self.count += 1
            yield prediction
        if not self.count:
            raise DataError(f"no texts in {self.source}")


def format_predictions(predictions: list[Prediction], *, width: int = 70) -> str:
    """A plain-text table: label, score, text (shortened to `width` characters)."""
    return format_table(
        [{"label": p.label, "score": p.score, "text": one_line(p.text, width)} for p in predictions]
    )


def run(argv: list[str]) -> int:
    args, inference_args, positional = build_parser().parse(argv)
    # --output is locked from the start: a second writer is refused before any model loads
    with output_lock(args.output, "--output") if args.output else nullcontext():
        return _predict(args, inference_args, positional)


def _predict(args: PredictArguments, inference_args: InferenceArguments, positional: Any) -> int:
    texts = _text_source(args, positional.texts)
    batch_size = inference_args.batch_size
    if args.backend == "onnxruntime":
        model, tokenizer = load_onnx_classifier(args.model, device=inference_args.device)
    else:
        classifier = load_classifier(args.model, **asdict(inference_args))
        model, tokenizer = classifier.model, classifier.tokenizer
    if args.use_pipeline:
        texts = list(texts)
        predictions = classify(classifier, texts, batch_size=batch_size, progress=args.progress)
    else:
        predictions = classify_bulk(
            model,
            tokenizer,
            texts,
            batch_size=batch_size,
            window_size=args.window_size,
            progress=args.progress,
        )
    counted = _Counted(predictions, args.input or "stdin")
    if args.output:  # streamed to a file beside --output, renamed into place when complete
        write_predictions(counted, args.output, flag="--output")
        print(f"Wrote {counted.count} predictions to {args.output}")
    else:
        print(format_predictions(list(counted)))
    return 0
