"""Training plots, plain-text summaries and the Hub model card.

Nothing here touches the model: inputs are `Trainer.state.log_history`, metric dicts and plain
values, so reports can be rebuilt from a saved run folder. matplotlib and jinja2 are imported
inside the functions that need them, keeping `import hf_spam.reporting` cheap.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .constants import SMS_SPAM_HUB_ID, is_number
from .files import write_text

if TYPE_CHECKING:
    from huggingface_hub import ModelCardData

__all__ = [
    "CARD_CONTEXT_FILE",
    "DEFAULT_MODEL_CARD_TEMPLATE",
    "build_card_data",
    "confusion_matrix_table",
    "format_table",
    "per_class_table",
    "plot_confusion_matrix",
    "plot_training_curves",
    "render_model_card",
]

_PACKAGE_DIR = Path(__file__).resolve().parent
#: The card template: inside the package when installed from a wheel, else at the checkout's top.
DEFAULT_MODEL_CARD_TEMPLATE = next(
    (
        path
        for path in (_PACKAGE_DIR / "model_card.md", _PACKAGE_DIR.parent / "model_card.md")
        if path.is_file()
    ),
    _PACKAGE_DIR.parent / "model_card.md",
)

NOT_AVAILABLE = "n/a"
#: Saved beside a trained model: what its card was rendered with, to render it again on push.
CARD_CONTEXT_FILE = "card_context.json"
_DPI = 150  # sharp enough for the Hub card, small enough to commit
_TEMPLATE_SYNTAX = re.compile(r"\{\{|\{%|\{#")


# --------------------------------------------------------------------------------------------
# Small helpers shared by scripts
# --------------------------------------------------------------------------------------------


def _format_value(value: Any) -> str:
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
    cells = [[_format_value(row.get(column)) for column in columns] for row in rows]
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
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI)
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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI)
    return path


# --------------------------------------------------------------------------------------------
# Model card
# --------------------------------------------------------------------------------------------

# (metric key in results, Hub metric id, pretty name, metric args) for the model-index.
_INDEX_METRICS = (
    ("accuracy", "accuracy", "Accuracy", None),
    ("f1_macro", "f1", "F1 (macro)", {"average": "macro"}),
    ("precision_macro", "precision", "Precision (macro)", {"average": "macro"}),
    ("recall_macro", "recall", "Recall (macro)", {"average": "macro"}),
)
_RESULT_COLUMNS = ("loss", "accuracy", "precision_macro", "recall_macro", "f1_macro")
_PER_CLASS_KEY = re.compile(r"^(precision|recall|f1|support)_(.+)$")
_SPLIT_ORDER = ("train", "validation", "test")


def _split_results(results: Mapping[str, Any] | None, split: str) -> dict[str, Any]:
    """Metrics of one split with Trainer's `eval_`/`test_`/`<split>_` prefixes removed."""
    metrics = dict((results or {}).get(split) or {})
    prefixes = (f"{split}_", "eval_", "test_", "train_")
    return {
        next((key[len(p) :] for p in prefixes if key.startswith(p)), key): value
        for key, value in metrics.items()
    }


def _ordered_splits(results: Mapping[str, Any] | None) -> list[str]:
    splits = list(results or {})
    return sorted(
        splits, key=lambda s: _SPLIT_ORDER.index(s) if s in _SPLIT_ORDER else len(_SPLIT_ORDER)
    )


def _label_names(labels: Mapping[Any, str] | Sequence[str] | None) -> list[str] | None:
    if isinstance(labels, Mapping):  # an id2label dict, possibly with JSON string keys
        labels = [labels[key] for key in sorted(labels, key=int)]
    return [str(label) for label in labels] if labels else None


def _with_defaults(context: Mapping[str, Any], output_path: Path | None = None) -> dict[str, Any]:
    """`context` completed with the defaults shared by the metadata and the card body."""
    ctx = dict(context)
    ctx.pop("card_data", None)  # reserved for the rendered front matter
    if not ctx.get("repo_id"):
        ctx["repo_id"] = (
            output_path.parent.as_posix() if output_path else "gpt-from-scratch-classifier"
        )
    ctx["model_name"] = ctx.get("model_name") or str(ctx["repo_id"]).rstrip("/").split("/")[-1]
    ctx.setdefault("base_model", "openai-community/gpt2")
    ctx.setdefault("license", "mit")
    ctx.setdefault("language", "en")
    ctx.setdefault("dataset_id", SMS_SPAM_HUB_ID)
    ctx["is_sms_spam"] = ctx["dataset_id"] == SMS_SPAM_HUB_ID
    ctx["dataset_name"] = ctx.get("dataset_name") or (
        "SMS Spam Collection" if ctx["is_sms_spam"] else "custom"
    )
    ctx["labels"] = _label_names(ctx.get("labels"))
    ctx["num_labels"] = len(ctx["labels"]) if ctx["labels"] else ctx.get("num_labels")
    ctx["confusion_matrix_split"] = ctx.get("confusion_matrix_split") or "test"
    return ctx


def build_card_data(context: Mapping[str, Any]) -> ModelCardData:
    """The card's YAML metadata as a `huggingface_hub.ModelCardData`, with a `model-index` holding
    accuracy and macro precision/recall/F1 of every non-training split in `context["results"]`
    (training-set scores go to the card body only: they are not an evaluation)."""
    from huggingface_hub import EvalResult, ModelCardData

    ctx = _with_defaults(context)
    eval_results = []
    for split in _ordered_splits(ctx.get("results")):
        if split == "train":
            continue
        metrics = _split_results(ctx.get("results"), split)
        for key, metric_type, pretty, args in _INDEX_METRICS:
            if metrics.get(key) is not None:
                eval_results.append(
                    EvalResult(
                        task_type="text-classification",
                        task_name="Text Classification",
                        dataset_type=ctx["dataset_id"]
                        or re.sub(r"\W+", "_", ctx["dataset_name"].lower()),
                        dataset_name=ctx["dataset_name"],
                        dataset_split=split,
                        metric_type=metric_type,
                        metric_value=round(float(metrics[key]), 4),
                        metric_name=f"{split.capitalize()} {pretty}",
                        metric_args=args,
                    )
                )
    tags = ["gpt2", "llms-from-scratch", "text-classification"]
    if ctx["is_sms_spam"]:
        tags += ["spam-detection", "sms"]
    return ModelCardData(
        language=ctx["language"],
        license=ctx["license"],
        library_name="transformers",
        pipeline_tag="text-classification",
        base_model=ctx["base_model"],
        datasets=[ctx["dataset_id"]] if ctx["dataset_id"] else None,
        metrics=[metric_type for _, metric_type, _, _ in _INDEX_METRICS],
        tags=tags + list(ctx.get("tags") or []),
        # `model_name` only names the model-index; alone it would be a stray metadata field.
        model_name=ctx["model_name"] if eval_results else None,
        eval_results=eval_results or None,
    )


def _key_value_table(mapping: Mapping[str, Any] | None, key: str, value: str) -> str | None:
    return (
        format_table([{key: k, value: v} for k, v in mapping.items()], markdown=True)
        if mapping
        else None
    )


def _results_table(
    results: Mapping[str, Any] | None, sizes: Mapping[str, int] | None
) -> str | None:
    rows = []
    sizes = sizes or {}
    for split in _ordered_splits(results):
        metrics = _split_results(results, split)
        row = {"split": split, "examples": sizes.get(split)}
        row.update({column: metrics.get(column) for column in _RESULT_COLUMNS})
        rows.append(row)
    # Drop columns no split reports (e.g. `loss` when only metrics were saved).
    keep = [
        key
        for key in ("split", "examples", *_RESULT_COLUMNS)
        if any(row[key] is not None for row in rows)
    ]
    return (
        format_table([{key: row[key] for key in keep} for row in rows], markdown=True)
        if rows
        else None
    )


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


def _framework_versions() -> dict[str, str]:
    versions = {}
    for package in ("hf_spam", "transformers", "torch", "datasets", "evaluate", "tiktoken"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _template_context(context: Mapping[str, Any], output_path: Path) -> dict[str, Any]:
    """User context plus what the template derives from it: defaults, tables, versions."""
    ctx = _with_defaults(context, output_path)
    results = ctx.get("results")
    ctx["results_table"] = _results_table(results, ctx.get("split_sizes"))
    ctx["per_class_table"] = per_class_table(_split_results(results, ctx["confusion_matrix_split"]))
    ctx["confusion_matrix_table"] = confusion_matrix_table(
        ctx.get("confusion_matrix"), ctx["labels"]
    )
    hyperparameters = {  # as written on the command line: 5e-05, 0.1, 5, not 4-decimal floats
        name: f"{value:g}" if isinstance(value, float) else value
        for name, value in (ctx.get("hyperparameters") or {}).items()
    }
    ctx["hyperparameters_table"] = _key_value_table(hyperparameters, "hyperparameter", "value")
    ctx["split_sizes_table"] = _key_value_table(ctx.get("split_sizes"), "split", "examples")
    ctx.setdefault("framework_versions", _framework_versions())
    return ctx


def render_model_card(
    template_path: str | os.PathLike | None,
    output_path: str | os.PathLike,
    *,
    context: Mapping[str, Any],
) -> Path:
    """Render the Jinja2 card template into a Hub model card (`README.md` of the model folder).

    The YAML front matter comes from `build_card_data` (huggingface_hub's own `ModelCardData` and
    `EvalResult`, so the `model-index` is what the Hub expects); the body from the template (the
    bundled one when `template_path` is None). Missing context values render as "n/a". The result
    is parsed back with `huggingface_hub.ModelCard` and checked for leftover template syntax before
    it is written, so a broken card fails here rather than on the Hub. See `model_card.md` for the
    context keys.
    """
    import jinja2
    from huggingface_hub import ModelCard

    class _Missing(jinja2.ChainableUndefined):
        def __str__(self) -> str:
            return NOT_AVAILABLE

    output_path = Path(output_path)
    template_path = (
        Path(template_path) if template_path is not None else DEFAULT_MODEL_CARD_TEMPLATE
    )
    environment = jinja2.Environment(
        undefined=_Missing,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=lambda value: NOT_AVAILABLE if value is None or value == "" else value,
    )
    environment.filters["num"] = lambda value: (
        NOT_AVAILABLE if value is None else _format_value(value)
    )
    environment.filters["thousands"] = lambda value: (
        f"{value:,}" if is_number(value) else NOT_AVAILABLE
    )
    template = environment.from_string(template_path.read_text(encoding="utf-8"))
    ctx = _template_context(context, output_path)
    card_data = build_card_data(ctx)
    content = template.render(card_data=card_data.to_yaml(), **ctx)

    leftover = _TEMPLATE_SYNTAX.search(content)
    if leftover:
        start = max(leftover.start() - 40, 0)
        raise ValueError(
            f"Unrendered template syntax in the model card: {content[start : leftover.end() + 40]!r}"
        )
    card = ModelCard(content)  # raises on malformed metadata or model-index
    if card.data.to_dict() != card_data.to_dict():
        raise ValueError(
            "The card template must start with a front matter block holding only {{ card_data }}"
        )
    output_path.parent.mkdir(parents=True, exist_ok=True)
    write_text(output_path, content)
    return output_path
