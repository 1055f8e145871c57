"""`hf-spam calibrate`: fit a temperature and a decision threshold on the validation split.

    hf-spam calibrate --model runs/spam --target_precision 0.99
    hf-spam calibrate --model runs/spam --max_false_positive_rate 0.005
    hf-spam calibrate --model runs/spam --cost_ratio 10     # a ham in the spam folder costs 10x
    hf-spam calibrate --model runs/spam                     # the temperature alone

The validation split of --dataset is rebuilt as training built it (pass the run's data flags:
--balance, --split_fractions, --split_seed, ...); the test split only reports, before and after.
`--cost_ratio C` is the cost of a false positive (label 0 predicted as label 1: a ham sent to
the spam folder) over that of a false negative (a spam let through). The fitted `temperature` and
`decision_threshold` go into the model's config.json (with calibration.json and the model card),
the folder written aside and moved into place; `predict`, `evaluate`, `serve` and the demo apply
them, `pipeline()` keeps the model's own probabilities. A threshold needs a binary model.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..data import DataArguments
from ..errors import UsageError
from ..evaluation.calibration import (
    GOALS,
    calibrate,
    calibration_rows,
    check_calibration_target,
    check_goal,
    write_operating_point,
)
from ..files import output_lock
from ..inference.load import InferenceArguments
from ..reporting import format_table
from .arguments import parser_for


@dataclass
class CalibrateArguments:
    """Which model and which goal for the threshold."""

    _argument_group_name = "calibration"

    model: str = field(
        metadata={"help": "Model folder (from hf-spam train); its config.json is updated."}
    )
    target_precision: float | None = field(
        default=None,
        metadata={"help": "Threshold: the highest recall of label 1 at this precision or more."},
    )
    max_false_positive_rate: float | None = field(
        default=None,
        metadata={"help": "Threshold: the highest recall with at most this false-positive rate."},
    )
    cost_ratio: float | None = field(
        default=None,
        metadata={
            "help": "Threshold: the lowest cost, a false positive (label 0 called label 1, ham "
            "sent to spam) costing this many false negatives (spam let through)."
        },
    )
    fit_temperature: bool = field(
        default=True,
        metadata={
            "help": "Fit the temperature (false: keep the config's, fit the threshold only)."
        },
    )
    dry_run: bool = field(
        default=False, metadata={"help": "Report the figures; write nothing into the folder."}
    )

    def __post_init__(self) -> None:
        self.goal = check_goal({name: getattr(self, name) for name in GOALS})
        if not Path(self.model).expanduser().is_dir():
            raise UsageError(
                f"--model {self.model}: not a local model folder (calibrate writes its config.json)"
            )
        check_calibration_target(Path(self.model).expanduser(), self.goal)


def run(argv: list[str]) -> int:
    dataclass_types = (CalibrateArguments, InferenceArguments, DataArguments)
    parser = parser_for("calibrate", dataclass_types, __doc__.split("\n")[0])
    args, inference_args, data_args = parser.parse(argv)
    # the folder is locked from the start: a run writing it meanwhile would be overwritten
    with output_lock(args.model, "--model") if not args.dry_run else nullcontext():
        return _calibrate(args, inference_args, data_args)


def _calibrate(args: Any, inference_args: InferenceArguments, data_args: DataArguments) -> int:
    calibration = calibrate(
        args.model, data_args, args.goal, temperature=args.fit_temperature, **asdict(inference_args)
    )
    sizes = calibration.num_examples
    print(
        f"Fitted on the validation split ({sizes['validation']} texts), goal "
        f"{calibration.goal.describe()}: {calibration.after.describe()}\n"
    )
    print(format_table(calibration_rows(calibration, "validation")))
    print(f"\nTest split ({sizes['test']} texts), before and after:\n")
    print(format_table(calibration_rows(calibration, "test")))
    if args.dry_run:
        print("\n--dry_run: nothing written")
        return 0
    written = write_operating_point(args.model, calibration)
    print(f"\nWrote temperature and decision_threshold into {args.model}: {', '.join(written)}")
    return 0
