"""The operating point of a classifier: calibrated probabilities and the decision taken on them.

A trained folder's `config.json` may hold `temperature` (the logits are divided by it before the
softmax) and `decision_threshold` (binary models: the probability of label id 1 at or above which
label 1 is predicted; null: argmax), both written by `hf-spam calibrate`. Every hf_spam
prediction path applies them through `OperatingPoint` (the bulk path, hence `predict` and
`serve`; `evaluate`; the demo), while the model's forward and `pipeline()` keep returning the
model's own probabilities, as anyone loading the folder with transformers alone sees them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ModelLoadError, UsageError

__all__ = ["OperatingPoint", "check_threshold_fits"]


def check_threshold_fits(
    num_labels: int, threshold: float | None, what: str = "a threshold", error: type = UsageError
) -> None:
    """A decision threshold is a binary model's: refuse one for any other number of classes."""
    if threshold is not None and num_labels != 2:
        raise error(
            f"{what} needs a binary model (2 labels); this one has {num_labels}: only a "
            "temperature applies to it"
        )


@dataclass(frozen=True)
class OperatingPoint:
    """`temperature` and `decision_threshold` of a config, and how they turn scores into a label."""

    temperature: float = 1.0
    threshold: float | None = None

    @classmethod
    def from_config(cls, config: Any) -> OperatingPoint:
        """The config's values; a config without them (any transformers model) gets the defaults."""
        temperature = getattr(config, "temperature", 1.0)
        threshold = getattr(config, "decision_threshold", None)
        if threshold is not None:
            check_threshold_fits(
                config.num_labels, threshold, "config.json decision_threshold", ModelLoadError
            )
        return cls(float(temperature or 1.0), None if threshold is None else float(threshold))

    @property
    def is_default(self) -> bool:
        return self.temperature == 1.0 and self.threshold is None

    def probabilities(self, logits: Any) -> Any:
        """Softmax of `logits / temperature` over the last dimension (a torch tensor)."""
        return (logits / self.temperature).softmax(-1)

    def sigmoid(self, logits: Any) -> Any:
        """Sigmoid of `logits / temperature` (multi-label or one-output models)."""
        return (logits / self.temperature).sigmoid()

    def choose_rows(self, scores: Any) -> tuple[Any, Any]:
        """`choose` for every row of a (texts, classes) tensor: the chosen ids and their scores."""
        if self.threshold is not None and scores.shape[-1] == 2:
            chosen = (scores[:, 1] >= self.threshold).long()
            return chosen, scores.gather(1, chosen[:, None])[:, 0]
        best_scores, chosen = scores.max(-1)
        return chosen, best_scores

    def rescale(self, probabilities: Sequence[float]) -> list[float]:
        """The temperature applied to probabilities already softmaxed (a pipeline's output):
        softmax(z / T) is proportional to softmax(z) ** (1 / T), since the log-sum-exp of the
        logits cancels."""
        if self.temperature == 1.0:
            return [float(p) for p in probabilities]
        logs = [math.log(p) / self.temperature if p > 0 else -math.inf for p in probabilities]
        top = max(logs)
        weights = [math.exp(value - top) for value in logs]
        total = sum(weights)
        return [weight / total for weight in weights]

    def choose(self, probabilities: Sequence[float]) -> int:
        """The predicted class id: argmax, or for a binary model with a threshold, label 1 when
        its probability reaches the threshold."""
        if self.threshold is not None and len(probabilities) == 2:
            return int(probabilities[1] >= self.threshold)
        return max(range(len(probabilities)), key=probabilities.__getitem__)

    def decide_output(
        self, output: Sequence[Mapping[str, Any]], labels: Sequence[str]
    ) -> list[dict[str, Any]]:
        """A pipeline's `top_k=None` output (every class, best first) at this operating point:
        rescaled scores, the chosen label first, the others by score."""
        by_label = {item["label"]: float(item["score"]) for item in output}
        scores = self.rescale([by_label[label] for label in labels])
        chosen = labels[self.choose(scores)]
        ranked = sorted(zip(labels, scores, strict=True), key=lambda pair: -pair[1])
        ranked.sort(key=lambda pair: pair[0] != chosen)  # stable: the chosen label first
        return [{"label": label, "score": score} for label, score in ranked]

    def describe(self) -> str:
        """`temperature 1.31, threshold 0.82` / `argmax`, for tables and cards."""
        threshold = "argmax" if self.threshold is None else f"threshold {self.threshold:.4g}"
        if self.temperature == 1.0:
            return threshold
        return f"temperature {self.temperature:.4g}, {threshold}"
