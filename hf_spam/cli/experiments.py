"""`hf-spam experiments`: the book's table of classification experiments, row for row.

    hf-spam experiments --output_dir runs/book                     # all 19 rows, GPT-2 weights
    hf-spam experiments --rows 1,4,10 --output_dir runs/book
    hf-spam experiments --init random --quick --output_dir runs/quick   # minutes, no download

Each row is an `hf-spam train` run in OUTPUT_DIR/row-NN/; finished rows are skipped, so an
interrupted grid resumes. Every other flag (--dataset, --num_train_epochs, ...) is passed to
each row's training run. Writes experiments.md, experiments.json and experiments.png.
"""

from __future__ import annotations

from ..experiments.grid import ExperimentArguments, run_experiments, write_experiment_reports
from ..files import output_lock
from .arguments import parser_for


def run(argv: list[str]) -> int:
    from ..data import DataArguments
    from ..training.arguments import SpamTrainingArguments
    from ..training.model_arguments import ModelArguments

    own = parser_for("experiments", (ExperimentArguments,), __doc__.split("\n")[0])
    (args,), train_flags = own.parse_known(argv)
    # Check the passed-on flags once, here, before the first row starts.
    every = (ModelArguments, DataArguments, SpamTrainingArguments)
    parser_for("experiments", every, "").parse([*train_flags, "--output_dir", args.output_dir])
    # The grid's folder is locked as a whole (each row's run locks its own folder too): a second
    # grid into it is refused at once instead of racing for rows and the table.
    with output_lock(args.output_dir, "--output_dir"):
        results = run_experiments(args, train_flags)
    print(f"{len(results)} rows; table in {args.output_dir}/experiments.md")
    return 0


__all__ = ["run", "write_experiment_reports"]
