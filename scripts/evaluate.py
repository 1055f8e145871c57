"""Evaluate a trained classifier (folder or Hub repo) and write a report.

    python scripts/evaluate.py --model runs/spam --output_dir runs/spam/eval   # SMS test split
    python scripts/evaluate.py --model runs/spam --dataset ../shared/data/SMSSpamCollection \
        --output_dir eval --errors 10 --compare runs/spam-lora
    python scripts/evaluate.py --model alice/gpt2-sms-spam --dataset new_messages.csv \
        --eval_split all --output_dir eval-new

Runs `evaluate.evaluator("text-classification")` with the package's metric module and writes
`eval_report.json`, `eval_report.md`, `confusion-matrix.png` and `predictions.jsonl` (one per
model with --compare). `--eval_split train|validation|test` rebuilds that split of --dataset exactly as
training does (same --balance, --split_fractions, --split_seed); `--eval_split all` takes every row.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

# Python puts a script's folder first on sys.path, so in this folder `import evaluate` finds this
# file instead of the `evaluate` library: here, and in every sibling script (train.py imports
# the library through hf_spam.metrics). Take the folder off the path; and when this file is
# being imported under the library's name, put the library in its place. Everything below
# imports hf_spam inside `main()`, so that case does no further work.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]
if __name__ == "evaluate":
    del sys.modules[__name__]
    sys.modules[__name__] = importlib.import_module("evaluate")

#: As `hf_spam.evaluation.EVAL_SPLITS`, which cannot be imported here (see above).
SPLITS = ("train", "validation", "test", "all")


@dataclass
class EvaluateArguments:
    model: str = field(metadata={"help": "Model folder (from scripts/train.py) or Hub repo id."})
    output_dir: str = field(metadata={"help": "Folder for the reports (refused if not empty)."})
    compare: str | None = field(
        default=None,
        metadata={
            "help": "A second model (folder or Hub id) evaluated on the same data, side by side."
        },
    )
    eval_split: str = field(  # not `split`: DataArguments.split (book|clean) parses beside it
        default="test",
        metadata={
            "help": "Split of --dataset to evaluate, rebuilt as training does; 'all': every row as is.",
            "choices": list(SPLITS),
        },
    )
    errors: int = field(
        default=0, metadata={"help": "List the N most confident mistakes of each model."}
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Replace a non-empty --output_dir."}
    )


def main(argv: list[str] | None = None) -> int:
    from transformers import HfArgumentParser

    from hf_spam.data import DataArguments, DataError
    from hf_spam.evaluation import (
        evaluate_models,
        format_evaluation_summary,
        write_evaluation_report,
    )
    from hf_spam.files import atomic_output_dir, check_output_dir
    from hf_spam.inference import InferenceArguments, ModelLoadError

    parser = HfArgumentParser((EvaluateArguments, InferenceArguments, DataArguments))
    args, inference_args, data_args = parser.parse_args_into_dataclasses(args=argv)
    models = [args.model] + ([args.compare] if args.compare else [])
    try:
        check_output_dir(args.output_dir, args.overwrite_output_dir)
        report = evaluate_models(models, data_args, split=args.eval_split, **asdict(inference_args))
        with atomic_output_dir(args.output_dir, args.overwrite_output_dir) as tmp:
            write_evaluation_report(report, tmp, errors=args.errors)
    except (ModelLoadError, DataError, FileExistsError, ConnectionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_evaluation_summary(report, errors=args.errors))
    print(f"\nReports in {args.output_dir}: eval_report.md, eval_report.json, confusion-matrix.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
