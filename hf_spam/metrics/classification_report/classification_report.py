# Copyright 2025 The hf_spam authors. Licensed under the Apache License, Version 2.0.
"""Accuracy, per-class and averaged precision/recall/F1, and the confusion matrix, in one pass.

A self-contained `evaluate` module: it ships inside the `hf_spam` package and loads from its folder
with `evaluate.load(path)`, so it works offline (the Hub-hosted `accuracy`/`f1` modules do not).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
Multi-class classification report computed from one confusion matrix C (rows = true label,
columns = predicted label):

- accuracy = trace(C) / sum(C)
- precision_<c> = C[c, c] / sum(C[:, c]); recall_<c> = C[c, c] / sum(C[c, :]);
  f1_<c> = 2 C[c, c] / (sum(C[:, c]) + sum(C[c, :]))
- precision/recall/f1 _macro: unweighted mean over classes; _weighted: mean weighted by support
- support_<c>: number of references of class c
- confusion_matrix: C as a list of lists of ints

A ratio whose denominator is zero (a class never predicted, or never present) is 0, like
scikit-learn's `zero_division=0`. Classes are `0 .. num_labels - 1`: `num_labels` is the number of
label names when `id2label` is given, else one more than the largest label seen. `<c>` is the label
name (lower-cased, non-alphanumerics replaced by `_`) when `id2label` is given, else the index.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): Predicted class indices.
    references (`list` of `int`): Ground-truth class indices.
    id2label (`dict[int, str]` or `list[str]`, *optional*): Class names, which fix the set of
        classes and name the per-class keys. Overrides the `id2label` given to `evaluate.load`.
    confusion_matrix (`bool`, *optional*): Whether to return the (non-scalar) confusion matrix.
        Overrides the value given to `evaluate.load`. Turn it off for the evaluator's bootstrap
        strategy, which needs scalar results.

Configurations (`evaluate.load(path, config_name)`):
    `default`: with the confusion matrix. `scalars`: every value a number, the matrix as
    `confusion_<true>_<predicted>` counts, for callers that average or bootstrap the results
    (transformers' `run_classification.py --metric_name`, whose `combined_score` is their mean).

Returns:
    `dict`: `accuracy`, `precision_<c>`, `recall_<c>`, `f1_<c>`, `support_<c>` for every class,
    `{precision,recall,f1}_{macro,weighted}`, and `confusion_matrix` (list of lists of int).

Examples:
    >>> report = evaluate.load("hf_spam/metrics/classification_report", id2label={0: "ham", 1: "spam"})
    >>> result = report.compute(predictions=[0, 1, 1, 0], references=[0, 1, 0, 0])
    >>> result["accuracy"], result["precision_spam"], result["confusion_matrix"]
    (0.75, 0.5, [[2, 1], [0, 1]])
"""

_CITATION = """
@article{scikit-learn,
  title={Scikit-learn: Machine Learning in {P}ython},
  author={Pedregosa, F. and Varoquaux, G. and Gramfort, A. and Michel, V. and Thirion, B. and
          Grisel, O. and Blondel, M. and Prettenhofer, P. and Weiss, R. and Dubourg, V. and
          Vanderplas, J. and Passos, A. and Cournapeau, D. and Brucher, M. and Perrot, M. and
          Duchesnay, E.},
  journal={Journal of Machine Learning Research},
  volume={12},
  pages={2825--2830},
  year={2011}
}
"""

_AVERAGES = ("macro", "weighted")


def _label_keys(names: Sequence[str] | None, num_labels: int) -> list[str]:
    """Key suffix of every class: its sanitised name, or its index when no names are given."""
    if names is None:
        return [str(index) for index in range(num_labels)]
    keys = [
        re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_") or str(i)
        for i, name in enumerate(names)
    ]
    clashes = {key for key in keys if keys.count(key) > 1 or key in _AVERAGES}
    if clashes:
        raise ValueError(f"Label names {list(names)} give ambiguous metric keys: {sorted(clashes)}")
    return keys


def _label_names(id2label: Mapping[int | str, str] | Sequence[str] | None) -> list[str] | None:
    """`id2label` as a list indexed by class id; JSON configs give string keys, so accept them."""
    if id2label is None:
        return None
    if isinstance(id2label, Mapping):
        by_id = {int(index): str(name) for index, name in id2label.items()}
        if sorted(by_id) != list(range(len(by_id))):
            raise ValueError(
                f"id2label must map exactly the ids 0..{len(by_id) - 1}, got {sorted(by_id)}"
            )
        return [by_id[index] for index in range(len(by_id))]
    return [str(name) for name in id2label]


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Element-wise ratio that is 0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    numerator = np.asarray(numerator, dtype=np.float64)
    out = np.zeros_like(numerator)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ClassificationReport(evaluate.Metric):
    """Classification report metric; `id2label` and `confusion_matrix` can be given at load time
    (`evaluate.load(path, id2label=...)`) because the evaluator does not forward compute kwargs."""

    def __init__(
        self,
        *args,
        id2label: Mapping[int | str, str] | Sequence[str] | None = None,
        confusion_matrix: bool = True,
        **kwargs,
    ):
        self.id2label = _label_names(id2label)
        self.return_confusion_matrix = confusion_matrix
        super().__init__(*args, **kwargs)
        self.scalars_only = self.config_name == "scalars"

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}
            ),
            reference_urls=[
                "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.classification_report.html"
            ],
        )

    def _compute(
        self,
        predictions: Sequence[int],
        references: Sequence[int],
        id2label: Mapping[int | str, str] | Sequence[str] | None = None,
        confusion_matrix: bool | None = None,
    ) -> dict:
        names = _label_names(id2label) if id2label is not None else self.id2label
        with_matrix = self.return_confusion_matrix if confusion_matrix is None else confusion_matrix
        predictions = np.asarray(predictions, dtype=np.int64)
        references = np.asarray(references, dtype=np.int64)
        seen_max = int(max(predictions.max(initial=-1), references.max(initial=-1)))
        num_labels = len(names) if names is not None else seen_max + 1
        if (
            predictions.min(initial=0) < 0
            or references.min(initial=0) < 0
            or seen_max >= num_labels
        ):
            raise ValueError(f"Labels must be class indices in [0, {num_labels}), got {seen_max}")

        matrix = np.bincount(
            references * num_labels + predictions, minlength=num_labels * num_labels
        ).reshape(num_labels, num_labels)
        true_positives = np.diag(matrix)
        predicted = matrix.sum(axis=0)
        support = matrix.sum(axis=1)
        per_class = {
            "precision": _safe_divide(true_positives, predicted),
            "recall": _safe_divide(true_positives, support),
            "f1": _safe_divide(2 * true_positives, predicted + support),
        }

        result: dict = {"accuracy": float(_safe_divide(true_positives.sum(), matrix.sum()))}
        keys = _label_keys(names, num_labels)
        for metric, values in per_class.items():
            result.update(
                {f"{metric}_{key}": float(value) for key, value in zip(keys, values, strict=True)}
            )
        result.update(
            {f"support_{key}": int(count) for key, count in zip(keys, support, strict=True)}
        )
        weights = _safe_divide(support, support.sum())
        for metric, values in per_class.items():
            result[f"{metric}_macro"] = float(values.mean()) if num_labels else 0.0
            result[f"{metric}_weighted"] = float((values * weights).sum())
        if with_matrix and self.scalars_only:
            result.update(
                {
                    f"confusion_{true}_{predicted}": int(matrix[i, j])
                    for i, true in enumerate(keys)
                    for j, predicted in enumerate(keys)
                }
            )
        elif with_matrix:
            result["confusion_matrix"] = matrix.tolist()
        return result
