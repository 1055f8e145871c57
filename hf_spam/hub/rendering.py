"""Rendering a `CardContext` into the Hub model card (`README.md` of a model folder).

The YAML front matter comes from huggingface_hub's own `ModelCardData`/`EvalResult` (so the
`model-index` is what the Hub expects), the body from the Jinja2 template `model_card.md` shipped
in the package. jinja2 and huggingface_hub are imported inside the functions that need them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..constants import SMS_SPAM_HUB_ID, SPLITS, is_number
from ..files import write_text
from ..reporting import confusion_matrix_table, format_table, format_value, per_class_table
from .card import CardContext

if TYPE_CHECKING:
    from huggingface_hub import ModelCardData

#: The card template, shipped inside the package (package-data).
DEFAULT_MODEL_CARD_TEMPLATE = Path(__file__).resolve().parent / "model_card.md"
NOT_AVAILABLE = "n/a"
_TEMPLATE_SYNTAX = re.compile(r"\{\{|\{%|\{#")

# (metric key in results, Hub metric id, pretty name, metric args) for the model-index.
_INDEX_METRICS = (
    ("accuracy", "accuracy", "Accuracy", None),
    ("f1_macro", "f1", "F1 (macro)", {"average": "macro"}),
    ("precision_macro", "precision", "Precision (macro)", {"average": "macro"}),
    ("recall_macro", "recall", "Recall (macro)", {"average": "macro"}),
)
#: The operating point's figures in the model-index (those of label id 1 for precision/recall).
_POINT_METRICS = (
    ("accuracy", "accuracy", "Accuracy", None),
    ("precision", "precision", "Precision (label 1)", {"average": "binary", "pos_label": 1}),
    ("recall", "recall", "Recall (label 1)", {"average": "binary", "pos_label": 1}),
)
_RESULT_COLUMNS = ("loss", "accuracy", "precision_macro", "recall_macro", "f1_macro")


def _as_context(context: CardContext | Mapping[str, Any]) -> CardContext:
    if isinstance(context, CardContext):
        return context
    return CardContext.from_dict({k: v for k, v in context.items() if k != "card_data"})


def _split_results(results: Mapping[str, Any] | None, split: str) -> dict[str, Any]:
    """Metrics of one split with Trainer's `eval_`/`test_`/`<split>_` prefixes removed."""
    metrics = dict((results or {}).get(split) or {})
    prefixes = (f"{split}_", "eval_", "test_", "train_")
    return {
        next((key[len(p) :] for p in prefixes if key.startswith(p)), key): value
        for key, value in metrics.items()
    }


def _ordered_splits(results: Mapping[str, Any] | None) -> list[str]:
    return sorted(results or {}, key=lambda s: SPLITS.index(s) if s in SPLITS else len(SPLITS))


def _derived(ctx: CardContext, output_path: Path | None = None) -> dict[str, Any]:
    """The context's values plus the defaults the metadata and the card body share."""
    values = ctx.to_dict()
    repo_id = ctx.repo_id or (
        output_path.parent.as_posix() if output_path else "gpt-from-scratch-classifier"
    )
    values["repo_id"] = repo_id
    values["model_name"] = ctx.model_name or str(repo_id).rstrip("/").split("/")[-1]
    values["is_sms_spam"] = ctx.dataset_id == SMS_SPAM_HUB_ID
    values["dataset_name"] = ctx.dataset_name or (
        "SMS Spam Collection" if values["is_sms_spam"] else "custom"
    )
    values["num_labels"] = len(ctx.labels) if ctx.labels else None
    return values


def _decision(threshold: float | None) -> str:
    return "argmax" if threshold is None else f"threshold {threshold:.4g}"


def build_card_data(context: CardContext | Mapping[str, Any]) -> ModelCardData:
    """The card's YAML metadata as a `huggingface_hub.ModelCardData`, with a `model-index` holding
    accuracy and macro precision/recall/F1 of every non-training split in `results` (training-set
    scores go to the card body only: they are not an evaluation), then, for a calibrated model,
    the test split's accuracy and label 1's precision and recall at its operating point. Each
    states the decision it was measured at in `metric_args.decision_threshold` ("argmax" or the
    probability of label id 1)."""
    from huggingface_hub import EvalResult, ModelCardData

    ctx = _derived(_as_context(context))

    def result(split: str, metric: tuple, value: Any, threshold: Any, name: str) -> Any:
        _, metric_type, pretty, args = metric
        return EvalResult(
            task_type="text-classification",
            task_name="Text Classification",
            dataset_type=ctx["dataset_id"] or re.sub(r"\W+", "_", ctx["dataset_name"].lower()),
            dataset_name=ctx["dataset_name"],
            dataset_split=split,
            metric_type=metric_type,
            metric_value=round(float(value), 4),
            metric_name=f"{split.capitalize()} {pretty}{name}",
            metric_args={**(args or {}), "decision_threshold": threshold},
        )

    eval_results = []
    measured = ctx["results_threshold"]
    for split in _ordered_splits(ctx["results"]):
        if split == "train":
            continue
        metrics = _split_results(ctx["results"], split)
        for metric in _INDEX_METRICS:
            if metrics.get(metric[0]) is not None:
                threshold = "argmax" if measured is None else measured
                eval_results.append(result(split, metric, metrics[metric[0]], threshold, ""))
    point = ctx["operating_point"] or {}
    after = point.get("test_after") or {}
    for metric in _POINT_METRICS:
        if after.get(metric[0]) is not None:
            threshold = point.get("decision_threshold")
            name = f" (calibrated, {_decision(threshold)})"
            value = after[metric[0]]
            eval_results.append(
                result("test", metric, value, "argmax" if threshold is None else threshold, name)
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
        tags=tags + list(ctx["tags"] or []),
        # `model_name` only names the model-index; alone it would be a stray metadata field.
        model_name=ctx["model_name"] if eval_results else None,
        eval_results=eval_results or None,
    )


def _key_value_table(mapping: Mapping[str, Any] | None, key: str, value: str) -> str | None:
    if not mapping:
        return None
    return format_table([{key: k, value: v} for k, v in mapping.items()], markdown=True)


def _results_table(results: Mapping[str, Any], sizes: Mapping[str, int]) -> str | None:
    rows = []
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
    if not rows:
        return None
    return format_table([{key: row[key] for key in keep} for row in rows], markdown=True)


def _framework_versions() -> dict[str, str]:
    versions = {}
    for package in ("hf_spam", "transformers", "torch", "datasets", "evaluate", "tiktoken"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _template_context(ctx: CardContext, output_path: Path) -> dict[str, Any]:
    """The context plus what the template derives from it: defaults, tables, versions."""
    values = _derived(ctx, output_path)
    results = ctx.results
    values["results_table"] = _results_table(results, ctx.split_sizes)
    values["per_class_table"] = per_class_table(_split_results(results, ctx.confusion_matrix_split))
    values["confusion_matrix_table"] = confusion_matrix_table(ctx.confusion_matrix, ctx.labels)
    hyperparameters = {  # as written on the command line: 5e-05, 0.1, 5, not 4-decimal floats
        name: f"{value:g}" if isinstance(value, float) else value
        for name, value in ctx.hyperparameters.items()
    }
    values["hyperparameters_table"] = _key_value_table(hyperparameters, "hyperparameter", "value")
    values["split_sizes_table"] = _key_value_table(ctx.split_sizes, "split", "examples")
    values["results_decision"] = _decision(ctx.results_threshold)
    point = ctx.operating_point or {}
    values["operating_point_table"] = (
        format_table(point["test"], markdown=True) if point.get("test") else None
    )
    values["framework_versions"] = ctx.framework_versions or _framework_versions()
    return values


def render_model_card(
    template_path: str | os.PathLike | None,
    output_path: str | os.PathLike,
    *,
    context: CardContext | Mapping[str, Any],
) -> Path:
    """Render the Jinja2 card template into a Hub model card (`README.md` of the model folder).

    The YAML front matter comes from `build_card_data` (huggingface_hub's own `ModelCardData` and
    `EvalResult`, so the `model-index` is what the Hub expects); the body from the template (the
    bundled one when `template_path` is None). Missing values render as "n/a". The result is
    parsed back with `huggingface_hub.ModelCard` and checked for leftover template syntax before
    it is written, so a broken card fails here rather than on the Hub.
    """
    import jinja2
    from huggingface_hub import ModelCard

    class _Missing(jinja2.ChainableUndefined):
        def __str__(self) -> str:
            return NOT_AVAILABLE

    output_path = Path(output_path)
    template_path = Path(template_path or DEFAULT_MODEL_CARD_TEMPLATE)
    environment = jinja2.Environment(
        undefined=_Missing,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=lambda value: NOT_AVAILABLE if value is None or value == "" else value,
    )
    environment.filters["num"] = lambda value: (
        NOT_AVAILABLE if value is None else format_value(value)
    )
    environment.filters["thousands"] = lambda value: (
        f"{value:,}" if is_number(value) else NOT_AVAILABLE
    )
    template = environment.from_string(template_path.read_text(encoding="utf-8"))
    ctx = _as_context(context)
    card_data = build_card_data(ctx)
    content = template.render(card_data=card_data.to_yaml(), **_template_context(ctx, output_path))

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
    write_text(output_path, content)
    return output_path


__all__ = ["DEFAULT_MODEL_CARD_TEMPLATE", "NOT_AVAILABLE", "build_card_data", "render_model_card"]
