"""Classification metrics for `Trainer` and for reports, computed by a bundled `evaluate` module.

`evaluate.load("accuracy")` fetches its script from the Hub; the module in
`classification_report/` ships inside this package instead, so evaluation works offline and every
caller (Trainer, evaluator, scripts) shares one implementation.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import evaluate
import numpy as np

if TYPE_CHECKING:
    from transformers import EvalPrediction

__all__ = [
    "CLASSIFICATION_METRIC_PATH",
    "ClassificationMetrics",
    "compute_classification_metrics",
    "load_classification_metric",
    "make_compute_metrics",
]

#: Folder of the bundled module; pass it to `evaluate.load` or `evaluator.compute(metric=...)`.
CLASSIFICATION_METRIC_PATH = Path(__file__).resolve().parent / "classification_report"

Id2Label = Mapping[int, str] | Mapping[str, str] | Sequence[str]


def load_classification_metric(
    id2label: Id2Label | None = None, *, confusion_matrix: bool = True, **load_kwargs: Any
) -> evaluate.EvaluationModule:
    """Load the bundled classification-report module from disk (no Hub access).

    `id2label` names the per-class keys (`precision_spam`) and fixes the class set, so a class
    absent from a batch still gets its (zero) scores. It is bound at load time because
    `evaluate.evaluator(...).compute` forwards no extra arguments to `metric.compute`. Set
    `confusion_matrix=False` for the evaluator's bootstrap strategy, which needs scalar results.
    `load_kwargs` go to `evaluate.load`; predictions are kept in memory unless told otherwise, so
    no cache files or locks are left behind.

    With evaluate 0.4.6 and transformers 5, give the evaluator the model and tokenizer rather than
    a `Pipeline`: its pipeline check reads the removed `transformers.TFPreTrainedModel`.
    """
    load_kwargs.setdefault("keep_in_memory", True)
    return evaluate.load(
        str(CLASSIFICATION_METRIC_PATH),
        id2label=id2label,
        confusion_matrix=confusion_matrix,
        **load_kwargs,
    )


@functools.lru_cache(maxsize=1)
def _shared_metric() -> evaluate.EvaluationModule:
    """One loaded module per process: loading copies and hashes the script, computing does not."""
    return load_classification_metric()


def compute_classification_metrics(
    predictions: Sequence[int] | np.ndarray,
    references: Sequence[int] | np.ndarray,
    id2label: Id2Label | None = None,
) -> dict[str, Any]:
    """Full classification report for class-id predictions: accuracy, per-class and macro/weighted
    precision, recall and F1, per-class support, and `confusion_matrix` (rows = true label,
    columns = predicted label, as a list of lists of ints)."""
    predictions = np.asarray(predictions)
    references = np.asarray(references)
    if predictions.ndim != 1 or references.ndim != 1:
        raise ValueError(
            f"Expected 1-D class ids, got predictions {predictions.shape} and references "
            f"{references.shape}; take the argmax of logits first."
        )
    return _shared_metric().compute(
        predictions=predictions, references=references, id2label=id2label
    )


class ClassificationMetrics:
    """`Trainer(compute_metrics=...)` callable: argmax over logits, then the classification report.

    Trainer logs only scalars, so the call returns accuracy and the per-class and averaged
    precision/recall/F1 as floats (e.g. `accuracy`, `f1_macro`, `precision_spam`; Trainer adds its
    `eval_`/`test_` prefix). The rest of the report, the per-class `support_<c>` counts and the
    `confusion_matrix`, is kept from the most recent call in `last_result`, and the matrix in
    `confusion_matrix`: read it right after `trainer.evaluate()` or `trainer.predict()`.
    Batched evaluation (`batch_eval_metrics=True`) is not supported: the report needs all rows.
    """

    def __init__(self, id2label: Id2Label | None = None) -> None:
        self.id2label = id2label
        self.last_result: dict[str, Any] | None = None

    @property
    def confusion_matrix(self) -> list[list[int]] | None:
        """Confusion matrix of the most recent call (rows = true, columns = predicted)."""
        return None if self.last_result is None else self.last_result.get("confusion_matrix")

    def __call__(self, eval_pred: EvalPrediction) -> dict[str, float]:
        logits, labels = eval_pred.predictions, eval_pred.label_ids
        # Models may return extra outputs (hidden states, attentions): the logits come first.
        if isinstance(logits, (tuple, list)):
            logits = logits[0]
        if isinstance(labels, (tuple, list)):
            labels = labels[0]
        logits, labels = np.asarray(logits), np.asarray(labels)
        # Already class ids when `preprocess_logits_for_metrics` took the argmax.
        predictions = logits.argmax(axis=-1) if logits.ndim == labels.ndim + 1 else logits
        self.last_result = compute_classification_metrics(predictions, labels, self.id2label)
        return {
            key: float(value)
            for key, value in self.last_result.items()
            if key != "confusion_matrix" and not key.startswith("support_")
        }


def make_compute_metrics(id2label: Id2Label | None = None) -> ClassificationMetrics:
    """Build the `compute_metrics` callable for `Trainer`; see `ClassificationMetrics`."""
    return ClassificationMetrics(id2label)
