"""Threshold-free and operating-point figures of a classifier's scores, with scikit-learn.

`evaluate` reports, beside the metric module's accuracy and per-class figures:

* ROC AUC (`roc_auc_score`) and PR AUC as average precision (`average_precision_score`), of the
  probability of label id 1 for a binary model, one-vs-rest macro averages for more classes;
* MCC (`matthews_corrcoef`) of the decisions taken;
* for a binary model, precision, recall and false-positive rate of label id 1 at the decision
  taken (the model's threshold, or argmax);
* the expected calibration error (`expected_calibration_error`): top-label ECE over 15
  equal-width confidence bins, as Guo et al. (2017) define it.

A figure that is undefined on the data (an AUC when one class is absent) is None.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..inference.decision import OperatingPoint

__all__ = [
    "CURVE_FILES",
    "ECE_BINS",
    "OPERATING_NOTE",
    "binary_rates",
    "curve_files",
    "expected_calibration_error",
    "log_loss",
    "operating_point_metrics",
    "operating_row",
    "plot_curves",
]

#: Bins of the expected calibration error, as in Guo et al. (2017), "On Calibration of Modern
#: Neural Networks".
ECE_BINS = 15


def expected_calibration_error(
    references: Sequence[int], probabilities: Any, n_bins: int = ECE_BINS
) -> float:
    """Top-label ECE: sum over bins of (texts in bin / texts) x |accuracy - mean confidence|.

    The confidence of a text is its highest class probability, and it counts as correct when
    that class is its label, so the figure measures the probabilities, whatever threshold
    decides. The bins are scikit-learn's `calibration_curve(strategy="uniform")` ones: `n_bins`
    equal widths of [0, 1], each closed on the right ([0, 1/n], (1/n, 2/n], ..., ((n-1)/n, 1]);
    `calibration_curve` gives each non-empty bin's accuracy and mean confidence, and the same
    `searchsorted` rule counts its texts.
    """
    from sklearn.calibration import calibration_curve

    probabilities = np.asarray(probabilities, dtype=np.float64)
    references = np.asarray(references)
    if len(references) == 0:
        return 0.0
    confidence = probabilities.max(-1)
    correct = (probabilities.argmax(-1) == references).astype(int)
    accuracy, mean_confidence = calibration_curve(
        correct, confidence, n_bins=n_bins, strategy="uniform", pos_label=1
    )
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], confidence), minlength=n_bins)
    weights = counts[counts > 0] / len(confidence)
    return float(np.sum(weights * np.abs(accuracy - mean_confidence)))


def log_loss(references: Sequence[int], probabilities: Any) -> float:
    """Mean negative log-likelihood of the labels (scikit-learn's `log_loss`)."""
    from sklearn.metrics import log_loss as sklearn_log_loss

    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = list(range(probabilities.shape[-1]))
    return float(sklearn_log_loss(references, probabilities, labels=labels))


def binary_rates(references: Sequence[int], predicted: Sequence[int]) -> dict[str, float]:
    """Precision, recall and false-positive rate of label id 1 (0 where undefined, as
    scikit-learn's `zero_division=0`)."""
    from sklearn.metrics import confusion_matrix

    (tn, fp), (fn, tp) = confusion_matrix(references, predicted, labels=[0, 1])
    return {
        "precision": float(tp / (tp + fp)) if tp + fp else 0.0,
        "recall": float(tp / (tp + fn)) if tp + fn else 0.0,
        "false_positive_rate": float(fp / (fp + tn)) if fp + tn else 0.0,
    }


def _auc(function: Any, references: np.ndarray, scores: np.ndarray, **kwargs: Any) -> float | None:
    """An AUC, or None when the data cannot define it (a class absent)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no positive class found": None says it
        try:
            value = function(references, scores, **kwargs)
        except ValueError:
            return None
    return None if value is None or np.isnan(value) else float(value)


def operating_point_metrics(
    references: Sequence[int],
    probabilities: Any,
    predicted: Sequence[int],
    threshold: float | None = None,
) -> dict[str, Any]:
    """The figures of the module docstring for class ids `references`, a (texts, classes) array
    of `probabilities` and the class ids `predicted` at the decision `threshold` (None: argmax)."""
    from sklearn.metrics import average_precision_score, matthews_corrcoef, roc_auc_score

    references = np.asarray(references)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    num_labels = probabilities.shape[-1]
    figures: dict[str, Any] = {"decision_threshold": threshold}
    if num_labels == 2:
        positive = probabilities[:, 1]
        figures["roc_auc"] = _auc(roc_auc_score, references, positive)
        has_positive = bool((references == 1).any())  # else no recall exists, no PR curve
        figures["pr_auc"] = (
            _auc(average_precision_score, references, positive) if has_positive else None
        )
    else:
        one_hot = np.eye(num_labels)[references]
        labels = list(range(num_labels))
        figures["roc_auc"] = _auc(
            roc_auc_score, references, probabilities, multi_class="ovr", labels=labels
        )
        figures["pr_auc"] = _auc(average_precision_score, one_hot, probabilities)
    figures["mcc"] = float(matthews_corrcoef(references, predicted))
    if num_labels == 2:
        figures.update(binary_rates(references, predicted))
    figures["ece"] = expected_calibration_error(references, probabilities)
    return figures


OPERATING_NOTE = (
    "At the model's decision (its config's temperature and threshold; argmax when none). "
    "precision, recall and false_positive_rate are those of label id 1; ece is the top-label "
    f"expected calibration error over {ECE_BINS} equal-width bins."
)
_OPERATING_COLUMNS = ("roc_auc", "pr_auc", "mcc", "precision", "recall", "false_positive_rate")


def operating_row(model: str, figures: dict[str, Any]) -> dict[str, Any]:
    """A table row of `operating_point_metrics` (plus `temperature`): the decision, AUCs, MCC,
    label 1's rates there (binary models), ECE."""
    point = OperatingPoint(figures.get("temperature", 1.0), figures["decision_threshold"])
    row = {"model": model, "decision": point.describe()}
    row.update({key: figures[key] for key in _OPERATING_COLUMNS if key in figures})
    return {**row, "ece": figures["ece"]}


#: The curves `evaluate` draws for a binary model, per model: file name -> what it shows.
CURVE_FILES = {"roc_curve": "roc-curve.png", "pr_curve": "precision-recall-curve.png"}


def curve_files(suffix: str = "") -> dict[str, str]:
    """The curve PNGs of one model (`suffix` tells models apart: `-2`, `-3`, ...)."""
    return {key: name.replace(".png", f"{suffix}.png") for key, name in CURVE_FILES.items()}


def plot_curves(
    references: Sequence[int],
    probabilities: Any,
    predicted: Sequence[int],
    files: dict[str, Any],
    *,
    title: str,
    decision: str,
) -> list[Any]:
    """The ROC and precision-recall curves of label id 1 (a binary model), each with the
    operating point of `predicted` marked (`decision` names it in the legend). None is drawn
    when one class is absent from `references` (no curve exists)."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    from ..reporting import plot_operating_curve

    references = np.asarray(references)
    if len(set(references.tolist())) < 2:
        return []
    positive = np.asarray(probabilities, dtype=np.float64)[:, 1]
    rates = binary_rates(references, predicted)
    fpr, tpr, _ = roc_curve(references, positive)
    precision, recall, _ = precision_recall_curve(references, positive)
    return [
        plot_operating_curve(
            fpr,
            tpr,
            (rates["false_positive_rate"], rates["recall"]),
            files["roc_curve"],
            axes=("False-positive rate", "True-positive rate (recall)"),
            title=f"ROC: {title}",
            point_label=decision,
            diagonal=True,
        ),
        plot_operating_curve(
            recall[::-1],  # scikit-learn lists recall from 1 down to 0
            precision[::-1],
            (rates["recall"], rates["precision"]),
            files["pr_curve"],
            axes=("Recall", "Precision"),
            title=f"Precision-recall: {title}",
            point_label=decision,
        ),
    ]
