"""The book's table of classification experiments, row for row, as one command.

`ch06/02_bonus_additional-experiments` of *Build a Large Language Model (From Scratch)* varies one
design choice at a time against the chapter's recipe (row 1): token position, trainable layers,
model size, random weights, LoRA, context length, padding, causal mask, pooling. Each row here is
the same choice expressed as `hf-spam train` flags, run as an ordinary training run in
`OUTPUT_DIR/row-NN/`; a finished row is never run again, so an interrupted grid resumes where it
stopped. Rows whose frozen part is the same reuse its computed features (the trunk feature store,
kept in `OUTPUT_DIR/trunk-features`). The results go to `experiments.md` (the book's columns, its
reported accuracies beside ours), `experiments.json` and `experiments.png`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataError, UsageError
from ..files import write_file, write_json, write_text
from ..hardware import cpu_name
from ..reporting import format_table

logger = logging.getLogger(__name__)

EXPERIMENTS_MARKDOWN = "experiments.md"
EXPERIMENTS_JSON = "experiments.json"
EXPERIMENTS_PLOT = "experiments.png"
ROW_RECORD = "experiment.json"  # written into a row's folder when its run has finished
MODEL_SIZES = {
    "gpt2-small (124M)": "openai-community/gpt2",
    "gpt2-medium (355M)": "openai-community/gpt2-medium",
    "gpt2-large (774M)": "openai-community/gpt2-large",
    "gpt2-xl (1558M)": "openai-community/gpt2-xl",
}
#: `--quick`: the rows that differ in how the head reads the text and what trains, on a small
#: model for one epoch; minutes on a CPU.
QUICK_ROWS = (1, 2, 3, 4, 5, 10, 16, 17, 19)
QUICK_OVERRIDES = (
    "--config_overrides",
    "emb_dim=64,n_layers=3,n_heads=4",
    "--num_train_epochs",
    "1",
)


@dataclass(frozen=True)
class BookRow:
    """One row of the book's table: its settings, its `hf-spam train` flags, its figures."""

    number: int
    model: str
    weights: str
    token_position: str
    trainable_layers: str
    context_length: str
    flags: tuple[str, ...]
    #: The book's reported train / validation / test accuracy (%), minutes and device.
    book: tuple[float, float, float, float, str]


def _row(number, model, weights, position, layers, context, flags, *book) -> BookRow:
    return BookRow(number, model, weights, position, layers, context, tuple(flags), tuple(book))


# The book's table (README of ch06/02_bonus_additional-experiments) with the flags that make
# `hf-spam train` do what `additional_experiments.py` does for that row. Row 1 is the chapter's
# recipe: the last position of texts padded to the longest training text, pads seen as tokens.
BOOK_RECIPE = ("--trainable_token_pos", "last", "--context_length", "longest_training_example")
LONGEST = "longest train ex. (120)"
#: Every row: the bonus script's own split (`--split bonus`: not the chapter's, it shuffles once
#: more before cutting) and the book's training loader, batch for batch (its shuffle replayed
#: from the seed), dropping the last partial batch (1045 = 130 x 8 + 5), in training only.
BONUS_RUN = [
    "--split",
    "bonus",
    "--train_sampling_strategy",
    "book",
    "--dataloader_drop_last",
    "true",
]
SMALL, MEDIUM, LARGE, XL = MODEL_SIZES
BOOK_ROWS: tuple[BookRow, ...] = (
    _row(1, SMALL, "pretrained", "last", "last_block", LONGEST, BOOK_RECIPE,
         96.63, 99.33, 95.00, 0.28, "A100"),
    _row(2, SMALL, "pretrained", "first", "last_block", LONGEST,
         ("--trainable_token_pos", "first", "--context_length", "longest_training_example"),
         78.46, 80.54, 75.00, 0.28, "A100"),
    _row(3, SMALL, "pretrained", "last", "last_layer", LONGEST,
         (*BOOK_RECIPE, "--trainable_layers", "last_layer"), 78.65, 79.87, 72.00, 0.25, "A100"),
    _row(4, SMALL, "pretrained", "last", "last_two_blocks", LONGEST,
         (*BOOK_RECIPE, "--trainable_layers", "last_two_blocks"),
         98.85, 98.66, 98.33, 0.33, "A100"),
    _row(5, SMALL, "pretrained", "last", "all", LONGEST,
         (*BOOK_RECIPE, "--trainable_layers", "all"), 99.62, 96.64, 96.67, 0.69, "A100"),
    _row(6, MEDIUM, "pretrained", "last", "last_block", LONGEST, BOOK_RECIPE,
         87.50, 91.28, 84.67, 0.75, "A100"),
    _row(7, LARGE, "pretrained", "last", "last_block", LONGEST, BOOK_RECIPE,
         99.52, 98.66, 96.67, 1.50, "A100"),
    _row(8, XL, "pretrained", "last", "last_block", LONGEST, BOOK_RECIPE,
         99.81, 99.81, 98.33, 2.83, "A100"),
    _row(9, XL, "pretrained", "last", "all", LONGEST,
         (*BOOK_RECIPE, "--trainable_layers", "all"), 100.00, 98.66, 98.67, 8.12, "A100"),
    _row(10, SMALL, "random", "last", "all", LONGEST,
         (*BOOK_RECIPE, "--trainable_layers", "all", "--init", "random"),
         100.00, 96.64, 93.67, 0.69, "A100"),
    _row(11, SMALL, "pretrained", "last", "LoRA", LONGEST,
         (*BOOK_RECIPE, "--trainable_layers", "lora", "--lora_rank", "16", "--lora_alpha", "16",
          "--lora_alpha_convention", "book"),
         100.00, 97.32, 96.67, 0.75, "A100"),
    _row(12, XL, "pretrained", "last", "LoRA", LONGEST,
         (*BOOK_RECIPE, "--trainable_layers", "lora", "--lora_rank", "16", "--lora_alpha", "8",
          "--lora_alpha_convention", "book"),
         100.00, 98.66, 98.33, 5.79, "A100"),
    _row(13, SMALL, "pretrained", "last", "last_block", "context length (1024)",
         ("--trainable_token_pos", "last", "--context_length", "model_context_length"),
         83.08, 87.92, 78.33, 2.46, "A100"),
    _row(14, SMALL, "pretrained", "last", "last_block", "variable: no padding (batch size 1)",
         ("--trainable_token_pos", "last", "--no_padding"), 100.00, 98.66, 98.00, 1.75, "A100"),
    _row(15, SMALL, "pretrained", "last", "last_block", "variable: no padding (batch size 8)",
         ("--trainable_token_pos", "last", "--no_padding", "--gradient_accumulation_steps", "8"),
         99.33, 98.66, 98.33, 1.70, "A100"),
    _row(16, SMALL, "pretrained", "last", "last_block", "flexible (last non-padding position)",
         ("--trainable_token_pos", "flexible"), 99.42, 98.66, 98.33, 0.30, "A100"),
    _row(17, SMALL, "pretrained", "last", "last_block", "longest train ex. (120); no causal mask",
         (*BOOK_RECIPE, "--disable_causal_mask"), 99.23, 98.66, 95.33, 0.29, "A100"),
    # The book's row 18 sets `ignore_index=50256` in the loss, which cannot match a class label
    # (0 or 1), so its run is row 1's; the book reports row 1's figures for it too.
    _row(18, SMALL, "pretrained", "last", "last_block", "longest train ex. (120), ignore_index",
         BOOK_RECIPE, 96.63, 99.33, 95.00, 0.28, "A100"),
    _row(19, SMALL, "pretrained", "last + pooled embeddings", "last_block", LONGEST,
         (*BOOK_RECIPE, "--average_embeddings"), 97.79, 99.33, 96.33, 0.32, "A100"),
)  # fmt: skip


@dataclass
class ExperimentArguments:
    """What `hf-spam experiments` runs; every other flag goes to each row's `hf-spam train`."""

    _argument_group_name = "experiments"

    output_dir: str = field(
        default="runs/experiments",
        metadata={"help": "Folder of the grid: row-NN/ per row, experiments.md/.json/.png."},
    )
    rows: str = field(
        default="all",
        metadata={"help": "Rows of the book's table to run, e.g. '1,4,10' or '1-5' (default all)."},
    )
    init: str = field(
        default="pretrained",
        metadata={
            "help": "'random' runs every row from random weights (no GPT-2 download); the table "
            "marks the rows whose book figures need pretrained weights.",
            "choices": ["pretrained", "random"],
        },
    )
    quick: bool = field(
        default=False,
        metadata={"help": f"Rows {','.join(map(str, QUICK_ROWS))} on a 3-block model, one epoch."},
    )

    def __post_init__(self) -> None:
        parse_rows(self.rows)  # a bad --rows fails while parsing, before any row runs


@dataclass
class RowResult:
    """One finished row: our accuracies (fractions), run time and device, and where it ran."""

    number: int
    output_dir: str
    train_accuracy: float
    validation_accuracy: float
    test_accuracy: float
    #: Wall time of the row: Trainer's runtime plus `trunk_seconds`.
    seconds: float
    device: str
    flags: list[str]
    #: Building the trunk feature store, or only opening it when an earlier row built it.
    trunk_seconds: float = 0.0


def parse_rows(text: str) -> list[int]:
    """'all', '1,4,10' or '1-5,19' -> row numbers of the book's table, in table order."""
    known = [row.number for row in BOOK_ROWS]
    if text.strip() == "all":
        return known
    wanted: set[int] = set()
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        try:
            numbers = range(int(first), int(last or first) + 1)
        except ValueError:
            raise UsageError(f"--rows {text!r}: expected numbers like 1,4,10 or 1-5") from None
        unknown = [n for n in numbers if n not in known]
        if unknown or not numbers:
            raise UsageError(f"--rows {text!r}: the book's table has rows 1 to {len(known)}")
        wanted.update(numbers)
    return [n for n in known if n in wanted]


def row_argv(row: BookRow, args: ExperimentArguments, train_flags: Sequence[str]) -> list[str]:
    """The `hf-spam train` arguments of one row: its model, its flags, then the user's flags."""
    out = Path(args.output_dir) / f"row-{row.number:02d}"
    argv = ["--model_name_or_path", MODEL_SIZES[row.model], *row.flags]
    if args.init == "random" and "--init" not in row.flags:
        argv += ["--init", "random"]
    if args.quick:
        argv += list(QUICK_OVERRIDES)
    argv += BONUS_RUN
    argv += ["--trunk_cache_dir", str(Path(args.output_dir) / "trunk-features")]
    return [*argv, "--output_dir", str(out), "--overwrite_output_dir", "true", *train_flags]


def _device() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return cpu_name()


def _run_key(argv: Sequence[str]) -> tuple[str, ...]:
    """A row's training run apart from where it writes: rows with equal keys are one run."""
    where = list(argv).index("--output_dir")
    return (*argv[:where], *argv[where + 2 :])


def read_record(row: BookRow, args: ExperimentArguments) -> RowResult | None:
    """The result an earlier invocation recorded for `row` in this grid's folder, if any."""
    record = Path(args.output_dir) / f"row-{row.number:02d}" / ROW_RECORD
    if not record.is_file():
        return None
    try:
        return RowResult(**json.loads(record.read_text(encoding="utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError) as err:
        raise DataError(
            f"{record}: not a finished row's record ({err}); delete it to run row {row.number} again"
        ) from None


def run_row(
    row: BookRow,
    args: ExperimentArguments,
    train_flags: Sequence[str],
    earlier: dict[tuple[str, ...], RowResult] | None = None,
) -> RowResult:
    """Train one row, or read its result when an earlier invocation finished it, or take the
    result of an `earlier` row of this grid (this invocation's or one finished in the folder)
    that is the same run (with `--init random`, rows 5 and 10 both train every layer of a random
    GPT-2)."""
    from ..training.run import parse_train_arguments, train

    out = Path(args.output_dir) / f"row-{row.number:02d}"
    argv = row_argv(row, args, train_flags)
    recorded = read_record(row, args)
    if recorded is not None and recorded.flags == argv:
        logger.warning("Row %d: finished earlier, results read from %s", row.number, out)
        return recorded
    if recorded is not None:
        logger.warning("Row %d: %s was run with other flags; running it again", row.number, out)
    same = (earlier or {}).get(_run_key(argv))
    if same is not None:
        logger.warning("Row %d: the same run as row %d (equal flags); its results are reused",
                       row.number, same.number)  # fmt: skip
        result = RowResult(**{**asdict(same), "number": row.number, "flags": argv})
        write_json(out / ROW_RECORD, asdict(result))
        return result
    logger.warning("Row %d: hf-spam train %s", row.number, " ".join(argv))
    started = time.perf_counter()
    trained = train(*parse_train_arguments(argv))
    metrics = trained.metrics
    runtime = float(metrics.get("train_runtime", time.perf_counter() - started))
    result = RowResult(
        number=row.number,
        output_dir=str(out),
        train_accuracy=float(metrics["train_accuracy"]),
        validation_accuracy=float(metrics["validation_accuracy"]),
        test_accuracy=float(metrics["test_accuracy"]),
        seconds=runtime + trained.trunk_seconds,
        device=_device(),
        flags=argv,
        trunk_seconds=trained.trunk_seconds,
    )
    write_json(out / ROW_RECORD, asdict(result))  # last: its presence marks the row as finished
    return result


def finished_rows(
    args: ExperimentArguments, train_flags: Sequence[str] = ()
) -> dict[int, RowResult]:
    """Every row of the table this grid's folder holds a finished run of, with these flags."""
    found = {}
    for row in BOOK_ROWS:
        recorded = read_record(row, args)
        if recorded is not None and recorded.flags == row_argv(row, args, train_flags):
            found[row.number] = recorded
    return found


def run_experiments(args: ExperimentArguments, train_flags: Sequence[str] = ()) -> list[RowResult]:
    """Run (or resume) the chosen rows, then write experiments.md/.json/.png over every row
    finished in the folder, so that a grid run in parts (`--rows 1-4`, then `--rows 5,6`) reads
    as one table. Returns the chosen rows' results."""
    numbers = parse_rows(args.rows)
    if args.quick and args.rows == "all":
        numbers = list(QUICK_ROWS)
    for row in BOOK_ROWS:  # a damaged record of any chosen row stops the grid before it trains
        if row.number in numbers:
            read_record(row, args)
    results: list[RowResult] = []
    runs: dict[tuple[str, ...], RowResult] = {}  # rows finished here, earlier invocations included
    for finished in finished_rows(args, train_flags).values():
        runs.setdefault(_run_key(finished.flags), finished)
    for row in BOOK_ROWS:
        if row.number in numbers:
            results.append(run_row(row, args, train_flags, runs))
            runs.setdefault(_run_key(results[-1].flags), results[-1])
    done = finished_rows(args, train_flags)
    reported = [row for row in BOOK_ROWS if row.number in done]
    write_experiment_reports(reported, [done[row.number] for row in reported], args)
    return results


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}%"


def table_rows(
    rows: Sequence[BookRow], results: Sequence[RowResult], args: ExperimentArguments
) -> list[dict[str, Any]]:
    """One dict per row: the book's columns, our figures, the book's figures beside them."""
    table = []
    for row, result in zip(rows, results, strict=True):
        train, val, test, minutes, device = row.book
        weights = row.weights
        if args.init == "random" and row.weights == "pretrained":
            weights = "random (book: pretrained)"
        table.append(
            {
                "row": row.number,
                "model": row.model if not args.quick else f"{row.model}, reduced (--quick)",
                "weights": weights,
                "token position": row.token_position,
                "trainable layers": row.trainable_layers,
                "context length": row.context_length,
                "train acc": _percent(result.train_accuracy),
                "val acc": _percent(result.validation_accuracy),
                "test acc": _percent(result.test_accuracy),
                "book train/val/test": f"{train:.2f}% / {val:.2f}% / {test:.2f}%",
                "time": f"{result.seconds / 60:.2f} min"
                + (f" (trunk {result.trunk_seconds / 60:.2f})" if result.trunk_seconds else ""),
                "book time": f"{minutes:.2f} min ({device})",
                "device": result.device,
            }
        )
    return table


def plot_experiments(
    rows: Sequence[BookRow],
    results: Sequence[RowResult],
    path: str | os.PathLike,
    init: str = "pretrained",
) -> Path:
    """Test accuracy per row, ours next to the book's, as a grouped bar chart; the title (also
    the PNG's Title) says which weights each side started from."""
    import numpy as np
    from matplotlib.figure import Figure

    ours = "hf_spam, random weights" if init == "random" else "hf_spam"
    random_rows = [str(row.number) for row in rows if row.weights == "random"]
    book = "book, GPT-2 weights" + (
        f" (row {', '.join(random_rows)}: random)" if random_rows else ""
    )
    title = f"Test accuracy per row: {ours} against the {book}"
    x = np.arange(len(rows))
    fig = Figure(figsize=(max(6.5, 0.5 * len(rows) + 2), 3.4))
    ax = fig.subplots()
    ax.bar(x - 0.2, [100 * r.test_accuracy for r in results], 0.4, label=ours)
    ax.bar(x + 0.2, [row.book[2] for row in rows], 0.4, label=book)
    ax.set_title(title, fontsize=9)
    ax.set_xticks(x, labels=[str(row.number) for row in rows])
    ax.set_xlabel("Row of the book's table")
    ax.set_ylabel("Test accuracy (%)")
    ax.set_ylim(0, 115)  # headroom for the legend above the bars
    ax.set_yticks(range(0, 101, 20))
    ax.legend(loc="upper center", ncol=2, frameon=False)
    fig.tight_layout()
    return write_file(
        path, lambda tmp: fig.savefig(tmp, format="png", dpi=150, metadata={"Title": title})
    )


def write_experiment_reports(
    rows: Sequence[BookRow], results: Sequence[RowResult], args: ExperimentArguments
) -> list[Path]:
    """experiments.md (table), experiments.json (every figure) and experiments.png."""
    out = Path(args.output_dir)
    table = table_rows(rows, results, args)
    note = (
        "Time is Trainer's runtime plus the trunk pass (in brackets): the frozen blocks run "
        "once per store, so a row whose frozen part an earlier row computed only opens it.\n\n"
    )
    note += (
        "Every row ran from random weights (`--init random`); the book's figures for rows "
        "marked 'book: pretrained' come from OpenAI's GPT-2 weights, so they are not expected "
        "to match.\n\n"
        if args.init == "random"
        else ""
    )
    grid = QUICK_ROWS if args.quick else [row.number for row in BOOK_ROWS]
    missing = [str(n) for n in grid if n not in {row.number for row in rows}]
    if missing:
        note += f"Rows not finished in this folder: {', '.join(missing)}.\n\n"
    markdown = (
        "# The book's classification experiments\n\n"
        f"{note}{format_table(table, markdown=True)}\n\n![Test accuracy per row]({EXPERIMENTS_PLOT})\n"
    )
    return [
        write_text(out / EXPERIMENTS_MARKDOWN, markdown),
        write_json(
            out / EXPERIMENTS_JSON, {"rows": table, "results": [asdict(r) for r in results]}
        ),
        plot_experiments(rows, results, out / EXPERIMENTS_PLOT, args.init),
    ]


__all__ = [
    "BOOK_ROWS",
    "BookRow",
    "ExperimentArguments",
    "RowResult",
    "finished_rows",
    "parse_rows",
    "read_record",
    "row_argv",
    "run_experiments",
    "write_experiment_reports",
]
