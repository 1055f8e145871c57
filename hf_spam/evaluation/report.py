"""Evaluation reports: `evaluate`'s text-classification evaluator over labelled data, one or more
models side by side, written as JSON, Markdown, confusion-matrix plots and per-text predictions.

The numbers come from the package's own metric module (`hf_spam.metrics`), run by
`evaluate.evaluator("text-classification")`, so they are the ones training logs, at the model's
operating point (its config's temperature and decision threshold, `hf_spam.inference.decision`);
ROC and PR AUC, MCC, the rates at that point and the calibration error come from scikit-learn
(`hf_spam.evaluation.scores`). The data is
either a split of the training source, rebuilt exactly as training built it (same balancing,
fractions and seed), or every row of any labelled file.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import evaluate
from transformers import Pipeline

from ..constants import EVAL_REPORT_FILE
from ..data import DataArguments, load_raw_dataset, load_splits
from ..errors import DataError
from ..files import write_json, write_text
from ..inference.decision import OperatingPoint
from ..inference.load import (
    DEFAULT_BATCH_SIZE,
    Prediction,
    check_model_source,
    label_names,
    load_classifier,
    one_line,
    predictions_from_outputs,
    write_predictions,
)
from ..metrics import load_classification_metric
from ..reporting import (
    confusion_matrix_table,
    format_table,
    per_class_table,
    plot_confusion_matrix,
)
from .scores import (
    OPERATING_NOTE,
    curve_files,
    operating_point_metrics,
    operating_row,
    plot_curves,
)

__all__ = [
    "EVAL_SPLITS",
    "ClassificationEvaluator",
    "EvaluationData",
    "EvaluationReport",
    "ModelEvaluation",
    "evaluate_classifier",
    "evaluate_models",
    "format_evaluation_summary",
    "format_report_markdown",
    "load_evaluation_data",
    "write_evaluation_report",
]

#: `all` evaluates every row of the source as is (no balancing, no splitting).
EVAL_SPLITS = ("train", "validation", "test", "all")
REPORT_JSON = EVAL_REPORT_FILE
REPORT_MARKDOWN = "eval_report.md"
_PERF_KEYS = ("total_time_in_seconds", "samples_per_second", "latency_in_seconds")
_SUMMARY_METRICS = ("accuracy", "precision_macro", "recall_macro", "f1_macro")


class ClassificationEvaluator(evaluate.TextClassificationEvaluator):
    """`evaluate.evaluator("text-classification")`, keeping every example's class scores.

    Three changes to the stock evaluator: the pipeline is asked for every class's score
    (`top_k=None`) and its outputs are kept in `outputs`, for the list of mistakes and the
    predictions file; they are taken at the model's operating point (`point`: temperature and
    threshold, the chosen label first); and a ready `Pipeline` is used as is. evaluate 0.4.6 checks
    `transformers.TFPreTrainedModel`, which transformers 5 removed, before accepting a pipeline.
    """

    PIPELINE_KWARGS = {"truncation": True, "top_k": None}

    def __init__(self, point: OperatingPoint | None = None, labels: Sequence[str] = ()) -> None:
        super().__init__(task="text-classification")
        self.outputs: list[list[dict[str, Any]]] = []
        self.point, self.labels = point or OperatingPoint(), list(labels)

    def prepare_pipeline(
        self, model_or_pipeline, tokenizer=None, feature_extractor=None, device=None
    ):
        if isinstance(model_or_pipeline, Pipeline):
            if model_or_pipeline.task != self.task:
                raise ValueError(f"Expected a {self.task} pipeline, got {model_or_pipeline.task}")
            return model_or_pipeline
        return super().prepare_pipeline(model_or_pipeline, tokenizer, feature_extractor, device)

    def call_pipeline(self, pipe, *args, **kwargs):
        self.outputs, perf = super().call_pipeline(pipe, *args, **kwargs)
        if not self.point.is_default:
            self.outputs = [self.point.decide_output(out, self.labels) for out in self.outputs]
        return self.outputs, perf

    def predictions_processor(self, predictions, label_mapping):
        # With top_k=None each output lists every class, best first.
        best = [output[0] for output in predictions]
        return super().predictions_processor(best, label_mapping)


@dataclass
class EvaluationData:
    """Labelled texts (`text`, `label` columns; `label` a ClassLabel) and where they came from."""

    dataset: datasets.Dataset
    source: str
    split: str

    @property
    def label_names(self) -> list[str]:
        return list(self.dataset.features["label"].names)

    @property
    def class_counts(self) -> dict[str, int]:
        counts = Counter(self.dataset["label"])
        return {name: counts.get(i, 0) for i, name in enumerate(self.label_names)}

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "split": self.split,
            "num_examples": len(self.dataset),
            "labels": self.label_names,
            "class_counts": self.class_counts,
        }


def load_evaluation_data(
    data_args: DataArguments, *, split: str = "test", labels: Sequence[str] | None = None
) -> EvaluationData:
    """The labelled texts to evaluate on, with class ids in the order of `labels`.

    `split` train/validation/test rebuilds that split of the source exactly as training does
    (`load_splits`, the same split without tokenizing); `all` takes every row as is. `labels`
    (the model's class names) fix the label set, so a label the model does not know is an
    error naming the row.
    """
    if split not in EVAL_SPLITS:
        raise ValueError(f"split must be one of {', '.join(EVAL_SPLITS)}, got {split!r}")
    if labels is not None and data_args.labels is None:
        data_args = dataclasses.replace(data_args, labels=",".join(labels))
    columns = ["text", "label"]
    if split == "all":
        loaded, _ = load_raw_dataset(data_args)
        dataset = datasets.concatenate_datasets(
            [ds.select_columns(columns) for ds in loaded.values()]
        )
        source = data_args.train_file or data_args.dataset
        return EvaluationData(dataset, f"{source} (every row, as is)", split)
    splits, info = load_splits(data_args)  # the split only: tokenizing is the pipeline's job
    if info.split in ("book", "bonus"):
        name = "the book's split" if info.split == "book" else "the bonus experiments' split"
        how = f"{name} with seed {data_args.split_seed}"
    else:
        how = (
            f"{'balanced, ' if data_args.balance else ''}split {data_args.split_fractions} "
            f"with seed {data_args.split_seed}{', deduplicated' if data_args.dedupe else ''}"
        )
    return EvaluationData(splits[split].select_columns(columns), f"{info.source} ({how})", split)


@dataclass
class ModelEvaluation:
    """One model's results on `EvaluationData`."""

    model: str
    #: The `hf_spam.metrics` report: accuracy, per-class and averaged precision/recall/F1,
    #: support and `confusion_matrix` (rows = true label, columns = predicted).
    metrics: dict[str, Any]
    predictions: list[Prediction]
    references: list[str]
    samples_per_second: float
    #: `scores.operating_point_metrics`: AUCs, MCC, rates at the decision, calibration error.
    operating: dict[str, Any] = dataclasses.field(default_factory=dict)
    labels: list[str] = dataclasses.field(default_factory=list)

    def class_ids(self) -> tuple[list[int], list[list[float]], list[int]]:
        """References, every class's probability and the decisions, by class id (model order)."""
        index = {label: i for i, label in enumerate(self.labels)}
        probabilities = [[p.scores[label] for label in self.labels] for p in self.predictions]
        predicted = [index[p.label] for p in self.predictions]
        return [index[label] for label in self.references], probabilities, predicted

    def mistakes(self, n: int | None = None) -> list[dict[str, Any]]:
        """The `n` most confident wrong predictions, most confident first."""
        wrong = [
            {"text": p.text, "label": true, "predicted": p.label, "score": p.score}
            for p, true in zip(self.predictions, self.references, strict=True)
            if p.label != true
        ]
        wrong.sort(key=lambda mistake: mistake["score"], reverse=True)
        return wrong if n is None else wrong[:n]


def evaluate_classifier(
    classifier: Pipeline, data: EvaluationData, *, name: str | None = None
) -> ModelEvaluation:
    """Run the evaluator with the package's metric module; keep per-text predictions."""
    model_labels = label_names(classifier.model.config)
    unknown = sorted(set(model_labels) - set(data.label_names))
    if unknown:
        raise DataError(
            f"model {name or classifier.model.name_or_path}: labels {model_labels} do not match "
            f"the data's labels {data.label_names} ({', '.join(unknown)} unknown to the data)"
        )
    point = OperatingPoint.from_config(classifier.model.config)
    evaluator = ClassificationEvaluator(point, model_labels)
    result = evaluator.compute(
        model_or_pipeline=classifier,
        data=data.dataset,
        metric=load_classification_metric(data.label_names),
        input_column="text",
        label_column="label",
        label_mapping={label: i for i, label in enumerate(data.label_names)},
    )
    texts = data.dataset["text"]
    evaluation = ModelEvaluation(
        model=name or str(classifier.model.name_or_path),
        metrics={k: v for k, v in result.items() if k not in _PERF_KEYS},
        predictions=predictions_from_outputs(texts, evaluator.outputs, model_labels),
        references=[data.label_names[i] for i in data.dataset["label"]],
        samples_per_second=float(result["samples_per_second"]),
        labels=model_labels,
    )
    evaluation.operating = operating_point_metrics(*evaluation.class_ids(), point.threshold)
    evaluation.operating["temperature"] = point.temperature
    return evaluation


@dataclass
class EvaluationReport:
    """Every model's evaluation on the same data, in the order given (the first is the main)."""

    data: EvaluationData
    evaluations: list[ModelEvaluation]

    def disagreements(self) -> list[int]:
        """For each model after the first: on how many texts its label differs from the first's."""
        first = [p.label for p in self.evaluations[0].predictions]
        return [
            sum(a != p.label for a, p in zip(first, other.predictions, strict=True))
            for other in self.evaluations[1:]
        ]

    def to_dict(self, errors: int = 0) -> dict[str, Any]:
        models = []
        for index, evaluation in enumerate(self.evaluations):
            metrics = dict(evaluation.metrics)
            entry = {
                "model": evaluation.model,
                "num_examples": len(evaluation.predictions),
                "metrics": metrics,
                "confusion_matrix": metrics.pop("confusion_matrix"),
                "samples_per_second": evaluation.samples_per_second,
                "operating_point": evaluation.operating,
                "files": _model_files(index, len(evaluation.labels)),
            }
            if errors:
                entry["most_confident_errors"] = evaluation.mistakes(errors)
            models.append(entry)
        report: dict[str, Any] = {"data": self.data.describe(), "models": models}
        if len(models) > 1:
            report["disagreements_with_first"] = self.disagreements()
        return report


def evaluate_models(
    models: Sequence[str],
    data_args: DataArguments,
    *,
    split: str = "test",
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: int | str | None = None,
    trust_remote_code: bool = False,
) -> EvaluationReport:
    """Evaluate each model (folder or Hub id) on the same data; the first model's labels fix
    the label set. Every model is checked, then loads, before the data does: a bad name fails
    fast."""
    for model in models:
        check_model_source(model, trust_remote_code=trust_remote_code)
    classifiers = [
        load_classifier(
            model, device=device, batch_size=batch_size, trust_remote_code=trust_remote_code
        )
        for model in models
    ]
    data = load_evaluation_data(
        data_args, split=split, labels=label_names(classifiers[0].model.config)
    )
    evaluations = [
        evaluate_classifier(classifier, data, name=str(model))
        for model, classifier in zip(models, classifiers, strict=True)
    ]
    return EvaluationReport(data, evaluations)


# --------------------------------------------------------------------------------------------
# Writing and printing
# --------------------------------------------------------------------------------------------


def _model_files(index: int, num_labels: int = 0) -> dict[str, str]:
    """A model's files; the ROC and PR curves only for a binary model."""
    suffix = "" if index == 0 else f"-{index + 1}"
    return {
        "confusion_matrix_plot": f"confusion-matrix{suffix}.png",
        "predictions": f"predictions{suffix}.jsonl",
        **(curve_files(suffix) if num_labels == 2 else {}),
    }


def _operating_rows(report: EvaluationReport) -> list[dict[str, Any]]:
    return [operating_row(e.model, e.operating) for e in report.evaluations]


def _summary_rows(report: EvaluationReport) -> list[dict[str, Any]]:
    return [
        {
            "model": evaluation.model,
            "examples": len(evaluation.predictions),
            **{key: evaluation.metrics[key] for key in _SUMMARY_METRICS},
            "texts/s": evaluation.samples_per_second,
        }
        for evaluation in report.evaluations
    ]


def _mistake_rows(
    mistakes: Sequence[dict[str, Any]], *, markdown: bool = False, width: int = 80
) -> list[dict[str, Any]]:
    rows = []
    for mistake in mistakes:
        text = one_line(mistake["text"], width)
        rows.append(
            {
                "true": mistake["label"],
                "predicted": mistake["predicted"],
                "score": mistake["score"],
                "text": text.replace("|", "\\|") if markdown else text,
            }
        )
    return rows


def _data_lines(data: EvaluationData) -> list[str]:
    counts = ", ".join(f"{name} {n}" for name, n in data.class_counts.items())
    return [
        f"- **Data:** {data.source}",
        f"- **Split:** {data.split}",
        f"- **Examples:** {len(data.dataset)} ({counts})",
    ]


def format_report_markdown(report: EvaluationReport, errors: int = 0) -> str:
    """The Markdown report: data, a summary row per model, then each model's details."""
    lines = ["# Evaluation report", "", *_data_lines(report.data), "", "## Summary", ""]
    lines.append(format_table(_summary_rows(report), markdown=True))
    first = report.evaluations[0].model
    for other, count in zip(report.evaluations[1:], report.disagreements(), strict=True):
        total = len(report.data.dataset)
        lines += ["", f"`{other.model}` and `{first}` disagree on {count} of {total} texts."]
    lines += ["", "## Operating point", "", OPERATING_NOTE, ""]
    lines.append(format_table(_operating_rows(report), markdown=True))
    labels = report.data.label_names
    for index, evaluation in enumerate(report.evaluations):
        files = _model_files(index, len(evaluation.labels))
        lines += ["", f"## {evaluation.model}", "", "### Per class", ""]
        lines.append(per_class_table(evaluation.metrics) or "n/a")
        lines += ["", "### Confusion matrix", "", "Rows are true labels, columns predicted labels."]
        lines += ["", confusion_matrix_table(evaluation.metrics["confusion_matrix"], labels)]
        lines += ["", f"![Confusion matrix]({files['confusion_matrix_plot']})"]
        if "roc_curve" in files:
            lines += ["", f"![ROC curve]({files['roc_curve']})"]
            lines += ["", f"![Precision-recall curve]({files['pr_curve']})"]
        if errors:
            mistakes = evaluation.mistakes(errors)
            lines += ["", f"### {errors} most confident mistakes", ""]
            lines.append(
                format_table(_mistake_rows(mistakes, markdown=True), markdown=True)
                if mistakes
                else "None."
            )
        lines += ["", f"Every prediction: [{files['predictions']}]({files['predictions']})"]
    return "\n".join(lines) + "\n"


def write_evaluation_report(
    report: EvaluationReport, output_dir: str | os.PathLike, *, errors: int = 0
) -> list[Path]:
    """`eval_report.json`, `eval_report.md`, a confusion-matrix PNG and a predictions file per
    model, in `output_dir`. Returns the written files."""
    output_dir = Path(output_dir)
    labels = report.data.label_names
    written = [
        write_json(output_dir / REPORT_JSON, report.to_dict(errors)),
        write_text(output_dir / REPORT_MARKDOWN, format_report_markdown(report, errors)),
    ]
    for index, evaluation in enumerate(report.evaluations):
        files = _model_files(index, len(evaluation.labels))
        title = f"{Path(evaluation.model).name} ({report.data.split})"
        if "roc_curve" in files:
            point = OperatingPoint(1.0, evaluation.operating["decision_threshold"])
            paths = {key: output_dir / files[key] for key in ("roc_curve", "pr_curve")}
            written += plot_curves(
                *evaluation.class_ids(), paths, title=title, decision=point.describe()
            )
        written.append(
            plot_confusion_matrix(
                evaluation.metrics["confusion_matrix"],
                labels,
                output_dir / files["confusion_matrix_plot"],
                title=title,
            )
        )
        written.append(
            write_predictions(
                evaluation.predictions,
                output_dir / files["predictions"],
                references=evaluation.references,
            )
        )
    return written


def format_evaluation_summary(report: EvaluationReport, errors: int = 0) -> str:
    """What hf-spam evaluate prints: data, summary table, and the mistakes asked for."""
    data = report.data
    lines = [f"Data: {data.source}, split {data.split}, {len(data.dataset)} texts", ""]
    lines.append(format_table(_summary_rows(report)))
    lines += ["", format_table(_operating_rows(report))]
    for evaluation in report.evaluations if errors else ():
        mistakes = evaluation.mistakes(errors)
        lines += ["", f"Most confident mistakes of {evaluation.model}:"]
        lines.append(format_table(_mistake_rows(mistakes)) if mistakes else "none")
    return "\n".join(lines)
