"""What a model folder or Hub repo says about itself: its test scores and confusion-matrix plot.

The demo shows these beside the classifier. A folder from `hf-spam train` has `all_results.json`;
a Hub repo pushed by `hf-spam push` has the model card's model-index, read when results are absent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..constants import EXAMPLES_FILE, is_number

__all__ = ["ModelSummary", "read_model_summary", "target_label"]

CONFUSION_MATRIX_FILE = "confusion-matrix.png"
#: What the app reads from a Hub repo besides the model (the card, its scores, its plot and the
#: examples file: texts of the model's own test split, `[{"text": ..., "label": ...}, ...]`).
SUMMARY_FILES = ("README.md", "all_results.json", CONFUSION_MATRIX_FILE, EXAMPLES_FILE)


def target_label(labels: list[str]) -> str:
    """The class the explanation is about: `spam` when the model has one, else the last class."""
    lowered = [name.lower() for name in labels]
    return labels[lowered.index("spam")] if "spam" in lowered else labels[-1]


@dataclass
class ModelSummary:
    """Test scores and confusion-matrix plot of a model, as its folder or Hub repo has them."""

    folder: Path | None = None  # where the card files are (a Hub snapshot for a repo id)
    metrics: dict[str, float] = field(default_factory=dict)
    confusion_matrix: Path | None = None

    def markdown(self) -> str:
        if not self.metrics:
            return "*No test scores found beside the model (all_results.json or model card).*"
        rows = "\n".join(f"| {name} | {value:.4f} |" for name, value in self.metrics.items())
        return f"**Model card: test split**\n\n| metric | value |\n|---|---|\n{rows}"


def _card_folder(model: str) -> Path | None:
    """The model folder, or a snapshot of the Hub repo's card files (None when unreachable)."""
    if Path(model).expanduser().is_dir():
        return Path(model).expanduser()
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model, allow_patterns=list(SUMMARY_FILES)))
    except Exception:  # noqa: BLE001 - offline, private or gone: the page shows no scores
        return None


def _metrics_from_results(results: dict[str, Any], positive: str) -> dict[str, float]:
    keys = {
        "Test accuracy": "test_accuracy",
        "Test F1 (macro)": "test_f1_macro",
        f"Test F1 ({positive})": f"test_f1_{positive}",
    }
    return {name: float(results[key]) for name, key in keys.items() if is_number(results.get(key))}


def _metrics_from_card(readme: Path) -> dict[str, float]:
    """Test-split scores from the card's model-index (what a Hub repo has instead of results)."""
    from huggingface_hub import ModelCard

    try:
        results = ModelCard.load(readme).data.eval_results or []
    except Exception:  # noqa: BLE001 - a card without (valid) metadata has no scores
        return {}
    return {
        result.metric_name or f"Test {result.metric_type}": float(result.metric_value)
        for result in results
        if result.dataset_split == "test" and result.metric_type in ("accuracy", "f1")
    }


def read_model_summary(model: str, labels: list[str]) -> ModelSummary:
    """Test accuracy and F1 from `all_results.json`, else the card's model-index, and the plot."""
    folder = _card_folder(model)
    if folder is None:
        return ModelSummary()
    metrics: dict[str, float] = {}
    results = folder / "all_results.json"
    if results.is_file():
        try:
            metrics = _metrics_from_results(
                json.loads(results.read_text("utf-8")), target_label(labels)
            )
        except (UnicodeDecodeError, json.JSONDecodeError):
            metrics = {}
    if not metrics and (folder / "README.md").is_file():
        metrics = _metrics_from_card(folder / "README.md")
    plot = folder / CONFUSION_MATRIX_FILE
    return ModelSummary(folder, metrics, plot if plot.is_file() else None)
