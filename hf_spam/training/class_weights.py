"""`--class_weights`: a weighted training cross-entropy instead of undersampling.

The book balances the SMS data by throwing away most ham. Weighting the loss keeps every text
and counts each class as much: `balanced` gives class c the weight n / (k x n_c) (n texts, k
classes, n_c texts of class c, counted on the training split), scikit-learn's
`compute_class_weight("balanced")`; a list gives one weight per label id. The weighted loss is
PyTorch's `cross_entropy(weight=w)`: sum_i w[y_i] x loss_i / sum_i w[y_i] over the batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .model_arguments import TrainingSetupError

__all__ = ["BALANCED", "check_class_weights", "resolve_class_weights", "weighted_cross_entropy"]

BALANCED = "balanced"


def check_class_weights(value: str | None) -> str | list[float] | None:
    """`balanced`, a list of positive weights, or None; anything else is one line naming the flag."""
    if value is None or value == BALANCED:
        return value
    try:
        weights = [float(part) for part in str(value).split(",")]
    except ValueError:
        weights = []
    if len(weights) < 2 or not all(math.isfinite(w) and w > 0 for w in weights):
        raise TrainingSetupError(
            f"--class_weights {value!r}: expected 'balanced' or one positive weight per label, "
            "comma-separated, e.g. 1.0,3.5"
        )
    return weights


def resolve_class_weights(
    value: str | None, train_labels: Sequence[int], num_labels: int, problem_type: Any = None
) -> list[float] | None:
    """The weights of each label id for this run's training split (None: unweighted)."""
    weights = check_class_weights(value)
    if weights is None:
        return None
    if problem_type not in (None, "single_label_classification"):
        raise TrainingSetupError(f"--class_weights weights a cross-entropy; not {problem_type}")
    if weights == BALANCED:
        import numpy as np
        from sklearn.utils.class_weight import compute_class_weight

        labels = np.asarray(list(train_labels))
        missing = sorted(set(range(num_labels)) - set(labels.tolist()))
        if missing:
            raise TrainingSetupError(
                f"--class_weights balanced: label id(s) {missing} have no training text"
            )
        classes = np.arange(num_labels)
        return [float(w) for w in compute_class_weight(BALANCED, classes=classes, y=labels)]
    if len(weights) != num_labels:
        raise TrainingSetupError(
            f"--class_weights {value}: {len(weights)} weights for {num_labels} labels"
        )
    return weights


def weighted_cross_entropy(logits: Any, labels: Any, weights: Sequence[float]) -> Any:
    """The weighted mean cross-entropy of a batch, in float32 as transformers' loss."""
    import torch

    weight = torch.tensor(list(weights), dtype=torch.float32, device=logits.device)
    return torch.nn.functional.cross_entropy(
        logits.float().view(-1, logits.shape[-1]), labels.view(-1), weight=weight
    )
