"""Training plots and plain-text tables (the model card lives in `hf_spam.hub.card`).

Nothing here touches the model: inputs are `Trainer.state.log_history`, metric dicts and plain
values, so reports can be rebuilt from a saved run folder. matplotlib is imported inside the
functions that need it, keeping `import hf_spam.reporting` cheap.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .constants import is_number

__all__ = [
    "confusion_matrix_table",
    "format_table",
    "format_value",
    "per_class_table",
    "plot_confusion_matrix",
    "plot_operating_curve",
    "plot_training_curves",
]

_DPI = 150  # sharp enough for the Hub card, small enough to commit
_PER_CLASS_KEY = re.compile(r"^(precision|recall|f1|support)_(.+)$")


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def format_value(value: Any) -> str:
    """Metrics to 4 decimals, tiny/huge floats (learning rates) in short scientific form."""
    if value is None:
        return ""
    if not is_number(value):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    value = float(value)
    if math.isfinite(value) and value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
        return f"{value:.3g}"
    return f"{value:.4f}" if math.isfinite(value) else str(value)


def format_table(rows: Sequence[Mapping[str, Any]], *, markdown: bool = False) -> str:
    """Align `rows` (dicts; columns in first-seen key order) as a plain-text or Markdown table.

    Numbers are right-aligned and floats shown to 4 decimals; missing cells stay empty. The one
    table formatter of the project: scripts print summaries with it and the model card uses its
    Markdown form.
    """
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    if not columns:
        return ""
    cells = [[format_value(row.get(column)) for column in columns] for row in rows]
    numeric = [
        any(is_number(row.get(column)) for row in rows)
        and all(row.get(column) is None or is_number(row.get(column)) for row in rows)
        for column in columns
    ]
    widths = [
        max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)
    ]
    if markdown:
        widths = [max(width, 3) for width in widths]

    def line(values: Iterable[str]) -> str:
        padded = [
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        ]
        return f"| {' | '.join(padded)} |" if markdown else "  ".join(padded).rstrip()

    # Markdown marks right-aligned columns with a trailing colon.
    align = ":" if markdown else "-"
    rule = line(
        "-" * (width - 1) + (align if right else "-")
        for width, right in zip(widths, numeric, strict=True)
    )
    return "\n".join([line(columns), rule, *(line(values) for values in cells)])


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------


def _figure(**kwargs: Any) -> Any:
    """A matplotlib `Figure` drawn by the Agg canvas, outside pyplot.

    Skipping pyplot leaves the process-wide backend and figure registry alone (safe in notebooks,
    threads and headless CI) and needs no `close`.
    """
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _series(log_history: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(epochs, values) of every log entry holding `key`.

    The end-of-training summary (marked by `total_flos`) also carries a `train_loss`, the mean over
    the whole run; it is not a point of the curve.
    """
    epochs, values = [], []
    for entry in log_history:
        if key in entry and "epoch" in entry and "total_flos" not in entry:
            epochs.append(float(entry["epoch"]))
            values.append(float(entry[key]))
    return epochs, values


def _steps_per_epoch(log_history: Sequence[Mapping[str, Any]]) -> float | None:
    """Optimizer steps per epoch, read off the latest entry that has both counters."""
    for entry in reversed(log_history):
        if entry.get("epoch") and entry.get("step"):
            return float(entry["step"]) / float(entry["epoch"])
    return None


def _plot_curves(
    path: Path,
    curves: Sequence[tuple[str, str, tuple[list[float], list[float]]]],
    ylabel: str,
    secondary: tuple[str, float] | None,
) -> Path:
    """One book-style figure: values over epochs, a second x axis on top in other units."""
    fig = _figure(figsize=(5, 3))
    ax1 = fig.subplots()
    for label, style, (epochs, values) in curves:
        # A single evaluation would be an invisible line: mark the points.
        marker = "o" if len(values) < 2 else None
        ax1.plot(epochs, values, linestyle=style, marker=marker, label=label)
    ax1.set_xlabel("Epochs")
    ax1.set_ylabel(ylabel)
    ax1.legend()
    if secondary is not None:
        # The book draws the examples-seen axis with `twiny`; matching its limits to the epoch
        # axis keeps both scales aligned whatever points are plotted.
        axis_label, per_epoch = secondary
        ax2 = ax1.twiny()
        low, high = ax1.get_xlim()
        ax2.set_xlim(low * per_epoch, high * per_epoch)
        ax2.set_xlabel(axis_label)
    fig.tight_layout()
    return _save_figure(fig, path)


def _save_figure(fig: Any, path: Path) -> Path:
    """`fig` as `path`; a failed write (full disk) names the file and leaves no partial PNG
    (Pillow's errors name neither)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, dpi=_DPI)
    except OSError as err:
        path.unlink(missing_ok=True)
        if err.errno is not None and not err.filename:
            err.filename = str(path)
        raise
    return path


def plot_training_curves(
    log_history: Sequence[Mapping[str, Any]],
    output_dir: str | os.PathLike,
    *,
    examples_per_step: int | None = None,
) -> list[Path]:
    """Chapter 6's `loss-plot.png` and `accuracy-plot.png` from `Trainer.state.log_history`.

    Curves: training loss (`loss`), validation loss (`eval_loss`), training accuracy
    (`train_accuracy`, when the training set is evaluated with `metric_key_prefix="train"`) and
    validation accuracy (`eval_accuracy`); whatever is present is drawn, a plot with no data is
    skipped. The top axis counts examples seen when `examples_per_step` (batch size x devices x
    accumulation steps) is given, else optimizer steps. Returns the written files.
    """
    output_dir = Path(output_dir)
    per_epoch = _steps_per_epoch(log_history)
    secondary = None
    if per_epoch is not None:
        secondary = (
            ("Examples seen", per_epoch * examples_per_step)
            if examples_per_step
            else ("Steps", per_epoch)
        )
    plots = {
        "loss-plot.png": (
            "Loss",
            ("Training loss", "-", "loss"),
            ("Validation loss", "-.", "eval_loss"),
        ),
        "accuracy-plot.png": (
            "Accuracy",
            ("Training accuracy", "-", "train_accuracy"),
            ("Validation accuracy", "-.", "eval_accuracy"),
        ),
    }
    written = []
    for filename, (ylabel, *specs) in plots.items():
        curves = [(label, style, _series(log_history, key)) for label, style, key in specs]
        curves = [curve for curve in curves if curve[2][1]]
        if curves:
            written.append(_plot_curves(output_dir / filename, curves, ylabel, secondary))
    return written


def plot_confusion_matrix(
    matrix: Sequence[Sequence[int]],
    labels: Sequence[str],
    path: str | os.PathLike,
    title: str = "Confusion matrix",
) -> Path:
    """Confusion matrix heat map (rows = true label, columns = predicted) with counts in cells."""
    import numpy as np

    counts = np.asarray(matrix)
    if counts.shape != (len(labels), len(labels)):
        raise ValueError(
            f"Confusion matrix of shape {counts.shape} does not match {len(labels)} labels"
        )
    size = 2.0 + 0.6 * len(labels)
    fig = _figure(figsize=(size + 1.0, size))
    ax = fig.subplots()
    image = ax.imshow(counts, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax)
    ticks = range(len(labels))
    ax.set_xticks(ticks, labels=labels, rotation=45 if max(map(len, labels), default=0) > 6 else 0)
    ax.set_yticks(ticks, labels=labels)
    ax.set_xlabel("Predicted label")
    ax.set_ylabel("True label")
    ax.set_title(title)
    # Dark cells get white text so the counts stay legible.
    threshold = counts.max(initial=0) / 2
    for (row, column), count in np.ndenumerate(counts):
        color = "white" if count > threshold else "black"
        ax.text(column, row, str(count), ha="center", va="center", color=color)
    fig.tight_layout()
    return _save_figure(fig, Path(path))


def plot_operating_curve(
    x: Sequence[float],
    y: Sequence[float],
    point: tuple[float, float],
    path: str | os.PathLike,
    *,
    axes: tuple[str, str],
    title: str,
    point_label: str,
    diagonal: bool = False,
) -> Path:
    """A ROC or precision-recall curve (`x`, `y` as scikit-learn's curves give them), with the
    operating point marked and, for ROC, the chance diagonal."""
    fig = _figure(figsize=(4.5, 4))
    ax = fig.subplots()
    ax.plot(x, y, drawstyle="steps-post" if not diagonal else "default", label="curve")
    if diagonal:
        ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="chance")
    ax.plot(*point, marker="o", markersize=8, color="crimson", linestyle="", label=point_label)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.set_title(title)
    ax.legend(loc="lower right" if diagonal else "lower left")
    fig.tight_layout()
    return _save_figure(fig, Path(path))


def per_class_table(metrics: Mapping[str, Any], *, markdown: bool = True) -> str | None:
    """Per-class precision/recall/F1/support from the metric's `<metric>_<class>` keys."""
    classes: dict[str, dict[str, Any]] = {}
    for key, value in metrics.items():
        match = _PER_CLASS_KEY.match(key)
        if match and match.group(2) not in ("macro", "weighted"):
            classes.setdefault(match.group(2), {"class": match.group(2)})[match.group(1)] = value
    return format_table(list(classes.values()), markdown=markdown) if classes else None


def confusion_matrix_table(
    matrix: Sequence[Sequence[int]] | None,
    labels: Sequence[str] | None,
    *,
    markdown: bool = True,
) -> str | None:
    """The confusion matrix as a table: one row per true label, one column per predicted one."""
    if not matrix:
        return None
    names = (
        list(labels)
        if labels and len(labels) == len(matrix)
        else [str(i) for i in range(len(matrix))]
    )
    rows = [
        {
            "true \\ predicted": name,
            **{other: int(count) for other, count in zip(names, counts, strict=True)},
        }
        for name, counts in zip(names, matrix, strict=True)
    ]
    return format_table(rows, markdown=markdown)
