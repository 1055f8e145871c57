"""`hf-spam evaluate`: evaluate a trained classifier (folder or Hub repo) and write a report.

    hf-spam evaluate --model runs/spam --output_dir runs/spam/eval   # SMS test split
    hf-spam evaluate --model runs/spam --dataset ../shared/data/SMSSpamCollection \
        --output_dir eval --errors 10 --compare runs/spam-lora
    hf-spam evaluate --model alice/gpt2-sms-spam --dataset new_messages.csv \
        --eval_split all --output_dir eval-new

Runs `evaluate.evaluator("text-classification")` with the package's metric module and writes
`eval_report.json`, `eval_report.md`, `confusion-matrix.png` and `predictions.jsonl` (one per
model with --compare), plus `roc-curve.png` and `precision-recall-curve.png` for a binary model.
Predictions are taken at the model's operating point (config.json's `temperature` and
`decision_threshold`, from `hf-spam calibrate`); a second table gives ROC and PR AUC, MCC, the
precision, recall and false-positive rate of label id 1 there, and the calibration error. `--eval_split train|validation|test` rebuilds that split of --dataset exactly as
training does (same --balance, --split_fractions, --split_seed); `--eval_split all` takes every row.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..data import DataArguments
from ..errors import UsageError
from ..evaluation.report import (
    EVAL_SPLITS,
    evaluate_models,
    format_evaluation_summary,
    write_evaluation_report,
)
from ..files import atomic_output_dir, check_output_dir, output_lock
from ..inference.load import InferenceArguments
from .arguments import parser_for


@dataclass
class EvaluateArguments:
    """Which models to evaluate on which split, and where the reports go."""

    _argument_group_name = "evaluation"

    model: str = field(metadata={"help": "Model folder (from hf-spam train) or Hub repo id."})
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
            "choices": list(EVAL_SPLITS),
        },
    )
    errors: int = field(
        default=0, metadata={"help": "List the N most confident mistakes of each model."}
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Replace a non-empty --output_dir."}
    )

    def __post_init__(self) -> None:
        if self.errors < 0:
            raise UsageError(f"--errors must be 0 or more, got {self.errors}")
        check_output_dir(self.output_dir, self.overwrite_output_dir)


def run(argv: list[str]) -> int:
    dataclass_types = (EvaluateArguments, InferenceArguments, DataArguments)
    parser = parser_for("evaluate", dataclass_types, __doc__.split("\n")[0])
    args, inference_args, data_args = parser.parse(argv)
    models = [args.model] + ([args.compare] if args.compare else [])
    with output_lock(args.output_dir, "--output_dir"):  # from the start: a second one is refused
        report = evaluate_models(models, data_args, split=args.eval_split, **asdict(inference_args))
        with atomic_output_dir(args.output_dir, args.overwrite_output_dir) as tmp:
            write_evaluation_report(report, tmp, errors=args.errors)
    print(format_evaluation_summary(report, errors=args.errors))
    print(f"\nReports in {args.output_dir}: eval_report.md, eval_report.json, confusion-matrix.png")
    return 0
