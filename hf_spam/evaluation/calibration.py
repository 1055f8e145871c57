"""`hf-spam calibrate`: fit a model's operating point on the validation split, report it on test.

Two values, both fitted on the **validation** split (the test split only reports):

* `temperature` T: the logits are divided by T before the softmax (temperature scaling, Guo et
  al. 2017). T is the minimiser of the validation negative log-likelihood, found by L-BFGS on
  log T (so T stays positive). It changes the probabilities, not their order: AUCs stay.
* `decision_threshold` t (binary models): label id 1 is predicted when its calibrated
  probability is at least t, chosen for one goal:
  - `target_precision P`: the highest recall whose precision is at least P;
  - `max_false_positive_rate F`: the highest recall whose false-positive rate is at most F;
  - `cost_ratio C`: the lowest cost C x FP + FN, C being the cost of a false positive (label 0
    predicted as label 1: a ham sent to the spam folder) over that of a false negative (a spam
    let through). For perfectly calibrated probabilities the optimum is t = C / (1 + C).
  Each threshold considered is one at which the validation decisions change; the one kept lies
  halfway between the chosen score and the next lower one, so it does not sit on a text.

The model's probabilities come from the bulk path with no operating point (`OperatingPoint()`);
their logarithms stand in for the logits, which they equal up to a per-text constant the softmax
ignores. Both values go into the model's `config.json`, which every hf_spam prediction path
reads (`hf_spam.inference.decision`); the folder is written aside and moved into place.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError
from ..files import atomic_output_dir, read_config, write_json
from ..inference.bulk import classify_bulk
from ..inference.decision import OperatingPoint, check_threshold_fits
from ..inference.load import label_names
from .scores import log_loss, operating_point_metrics

__all__ = [
    "CALIBRATION_FILE",
    "GOALS",
    "Calibration",
    "Goal",
    "fit_temperature",
    "fit_threshold",
    "calibrate",
    "calibration_rows",
    "check_calibration_target",
    "check_goal",
    "model_probabilities",
    "point_figures",
    "write_operating_point",
]

#: Written into the model folder beside config.json: the goal, the fitted values, the figures.
CALIBRATION_FILE = "calibration.json"
#: The goals a threshold can be fitted for (one flag each).
GOALS = ("target_precision", "max_false_positive_rate", "cost_ratio")


@dataclass(frozen=True)
class Goal:
    """What the threshold is chosen for: one of `GOALS` and its value (None: no threshold)."""

    name: str | None = None
    value: float | None = None

    def describe(self) -> str:
        return "none (argmax)" if self.name is None else f"{self.name} {self.value:g}"


def check_goal(values: dict[str, float | None]) -> Goal:
    """The one goal given (flag name -> value, None when not given), or none; two goals or a value
    out of range are a `UsageError` naming the flags."""
    given = {name: value for name, value in values.items() if value is not None}
    if len(given) > 1:
        flags = " and ".join(f"--{name}" for name in given)
        raise UsageError(f"{flags}: give one goal for the threshold, not {len(given)}")
    if not given:
        return Goal()
    [(name, value)] = given.items()
    if name == "cost_ratio" and not value > 0:
        raise UsageError(f"--cost_ratio must be > 0, got {value}")
    if name == "target_precision" and not 0 < value <= 1:
        raise UsageError(f"--target_precision must be in (0, 1], got {value}")
    if name == "max_false_positive_rate" and not 0 <= value < 1:
        raise UsageError(f"--max_false_positive_rate must be in [0, 1), got {value}")
    return Goal(name, float(value))


def model_probabilities(classifier: Any, texts: Sequence[str], batch_size: int) -> np.ndarray:
    """Every class's probability for `texts` as the model gives them (no temperature, whatever
    the config holds), through the bulk path: a (texts, classes) array."""
    labels = label_names(classifier.model.config)
    predictions = classify_bulk(
        classifier.model, classifier.tokenizer, texts, batch_size=batch_size, point=OperatingPoint()
    )
    rows = np.array([[p.scores[label] for label in labels] for p in predictions], dtype=np.float64)
    return rows / rows.sum(-1, keepdims=True)  # float32 softmax rows, summing to 1 in float64


def fit_temperature(probabilities: np.ndarray, references: Sequence[int]) -> float:
    """The temperature minimising the negative log-likelihood of `references` (L-BFGS on log T)."""
    import torch

    logits = torch.log(torch.as_tensor(probabilities, dtype=torch.float64).clamp_min(1e-300))
    targets = torch.as_tensor(list(references), dtype=torch.long)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=1.0, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> Any:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), targets)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp())


def fit_threshold(references: Sequence[int], positive: Sequence[float], goal: Goal) -> float:
    """The threshold on the probability of label id 1 that meets `goal` on these texts (see the
    module docstring); a goal no threshold meets is a `UsageError` naming its flag."""
    from sklearn.metrics import roc_curve

    references, positive = np.asarray(references), np.asarray(positive, dtype=np.float64)
    if len(set(references.tolist())) < 2:
        raise UsageError(f"--{goal.name}: the validation split holds one class only")
    fpr, tpr, thresholds = roc_curve(references, positive, drop_intermediate=False)
    positives, negatives = int(references.sum()), int(len(references) - references.sum())
    tp, fp = tpr * positives, fpr * negatives
    if goal.name == "cost_ratio":
        cost = goal.value * fp + (positives - tp)
        best = int(np.flatnonzero(cost == cost.min())[0])  # ties: the highest threshold
    else:
        if goal.name == "target_precision":
            flagged = tp + fp
            precision = np.divide(tp, flagged, out=np.ones_like(tp), where=flagged > 0)
            ok = (precision >= goal.value) & (flagged > 0)
            best_seen = precision[flagged > 0].max()
        else:
            ok = fpr <= goal.value
            best_seen = fpr.min()
        if not ok.any():
            raise UsageError(
                f"--{goal.name} {goal.value:g}: no threshold reaches it on the validation split "
                f"(the best is {best_seen:.4g})"
            )
        recall = np.where(ok, tpr, -1.0)
        best = int(np.flatnonzero(recall == recall.max())[0])
    return _between(thresholds, best)


def _between(thresholds: np.ndarray, index: int) -> float:
    """Halfway between the chosen score and the next lower one (the decisions stay those at the
    chosen score); above every score, halfway to 1."""
    if index == 0:  # roc_curve's first threshold is +inf: nothing predicted as label 1
        return float((thresholds[1] + 1.0) / 2) if len(thresholds) > 1 else 1.0
    lower = thresholds[index + 1] if index + 1 < len(thresholds) else 0.0
    return float((thresholds[index] + lower) / 2)


def point_figures(
    probabilities: np.ndarray, references: Sequence[int], point: OperatingPoint
) -> dict[str, Any]:
    """The figures of `probabilities` (the model's own) at `point`: accuracy and NLL, then
    `operating_point_metrics` (AUCs, MCC, label 1's rates, ECE)."""
    scaled = np.array([point.rescale(row) for row in probabilities])
    predicted = [point.choose(row) for row in scaled]
    references = list(references)
    accuracy = float(np.mean(np.asarray(predicted) == np.asarray(references)))
    figures = {"temperature": point.temperature, "accuracy": accuracy}
    figures["nll"] = log_loss(references, scaled)
    figures.update(operating_point_metrics(references, scaled, predicted, point.threshold))
    return figures


@dataclass
class Calibration:
    """A fitted operating point and the figures before and after it."""

    model: str
    goal: Goal
    before: OperatingPoint
    after: OperatingPoint
    #: split -> {"before": figures, "after": figures}
    figures: dict[str, dict[str, dict[str, Any]]]
    num_examples: dict[str, int]

    def card_values(self) -> dict[str, Any]:
        """What the model card says of it: the goal, the values, the test split's figures."""
        return {
            "goal": self.goal.describe(),
            "temperature": self.after.temperature,
            "decision_threshold": self.after.threshold,
            "test": calibration_rows(self, "test"),
            "test_after": self.figures["test"]["after"],
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "goal": dataclasses.asdict(self.goal),
            "fitted_on": "validation",
            "temperature": self.after.temperature,
            "decision_threshold": self.after.threshold,
            "previous": dataclasses.asdict(self.before),
            "num_examples": self.num_examples,
            "figures": self.figures,
        }


def check_calibration_target(folder: Path, goal: Goal) -> list[str]:
    """The model's labels; a threshold goal for a model that is not binary is refused."""
    config = read_config(folder)
    labels = list((config.get("id2label") or {}).values())
    num_labels = len(labels) or int(config.get("num_labels", 2))
    if goal.name is not None:
        check_threshold_fits(num_labels, goal.value, f"--{goal.name}")
    return labels


def _copy_linked(source: Path, target: Path) -> None:
    """`source`'s files into `target`, hard-linked where the file system allows (a model folder's
    weights and checkpoints are large; every file rewritten is replaced, never edited in place)."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, symlinks=True, copy_function=link, dirs_exist_ok=True)


def write_operating_point(folder: str | os.PathLike, calibration: Calibration) -> list[str]:
    """`temperature` and `decision_threshold` into the folder's config.json, `calibration.json`
    beside it and, for a folder `hf-spam train` wrote, its model card with the operating point,
    in a copy of the folder that replaces it when complete. Returns the files rewritten."""
    from ..hub.card import CARD_CONTEXT_FILE, CardContext
    from ..hub.rendering import render_model_card

    folder = Path(folder)
    config = read_config(folder)
    config["temperature"] = calibration.after.temperature
    config["decision_threshold"] = calibration.after.threshold
    written = ["config.json", CALIBRATION_FILE]
    with atomic_output_dir(folder, overwrite=True, flag="--model") as tmp:
        _copy_linked(folder, tmp)
        write_json(tmp / "config.json", config)
        write_json(tmp / CALIBRATION_FILE, calibration.to_dict())
        if (folder / CARD_CONTEXT_FILE).is_file():
            card = CardContext.load(folder / CARD_CONTEXT_FILE)
            card.operating_point = calibration.card_values()
            card.save(tmp)
            shown = dataclasses.replace(card, repo_id=card.repo_id or folder.as_posix())
            render_model_card(None, tmp / "README.md", context=shown)
            written += [CARD_CONTEXT_FILE, "README.md"]
    return written


def calibrate(
    model: str | os.PathLike,
    data_args: Any,
    goal: Goal,
    *,
    temperature: bool = True,
    batch_size: int = 64,
    device: int | str | None = None,
    trust_remote_code: bool = False,
) -> Calibration:
    """Fit the operating point of the model folder `model` on the validation split of
    `data_args` (rebuilt as training built it) and measure it on the test split, before and
    after. Nothing is written (`write_operating_point` does)."""
    from ..inference.load import check_classifier_folder, load_classifier
    from .report import load_evaluation_data

    folder = check_classifier_folder(model, trust_remote_code=trust_remote_code)
    check_calibration_target(folder, goal)
    classifier = load_classifier(
        folder, device=device, batch_size=batch_size, trust_remote_code=trust_remote_code
    )
    labels = label_names(classifier.model.config)
    splits = {
        split: load_evaluation_data(data_args, split=split, labels=labels).dataset
        for split in ("validation", "test")
    }
    probabilities = {
        split: model_probabilities(classifier, dataset["text"], batch_size)
        for split, dataset in splits.items()
    }
    references = {split: list(dataset["label"]) for split, dataset in splits.items()}
    before = OperatingPoint.from_config(classifier.model.config)
    fitted = (
        fit_temperature(probabilities["validation"], references["validation"])
        if temperature
        else before.temperature
    )
    threshold = None
    if goal.name is not None:
        scaled = np.array(
            [OperatingPoint(fitted).rescale(row) for row in probabilities["validation"]]
        )
        threshold = fit_threshold(references["validation"], scaled[:, 1], goal)
    after = OperatingPoint(fitted, threshold)
    figures = {
        split: {
            "before": point_figures(probabilities[split], references[split], before),
            "after": point_figures(probabilities[split], references[split], after),
        }
        for split in ("validation", "test")
    }
    sizes = {split: len(dataset) for split, dataset in splits.items()}
    return Calibration(str(folder), goal, before, after, figures, sizes)


_TABLE_COLUMNS = (
    "accuracy", "precision", "recall", "false_positive_rate", "mcc", "roc_auc", "pr_auc", "ece",
    "nll",
)  # fmt: skip


def calibration_rows(calibration: Calibration, split: str = "test") -> list[dict[str, Any]]:
    """The before/after table of one split: the decision and its figures."""
    rows = []
    for when, point in (("before", calibration.before), ("after", calibration.after)):
        figures = calibration.figures[split][when]
        row = {split: when, "decision": point.describe()}
        rows.append({**row, **{key: figures[key] for key in _TABLE_COLUMNS if key in figures}})
    return rows
