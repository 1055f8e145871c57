"""The model card's values: one typed context (`CardContext`), built from a run or a folder.

Training builds the context from the run (`hf_spam.training.card`) and saves it beside the model
(`card_context.json`); sharing reads it back, or rebuilds what it can from a folder another tool
wrote (`CardContext.from_folder`), and renders the card again with the repo id. jinja2 and
huggingface_hub's card classes are imported inside the functions that need them; rendering is
`hf_spam.hub.rendering`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..constants import SMS_SPAM_HUB_ID, SPLITS, is_number, split_metrics
from ..errors import ModelLoadError
from ..files import read_config, read_json, write_json

#: Saved beside a trained model: what its card was rendered with, to render it again on push.
CARD_CONTEXT_FILE = "card_context.json"
#: OpenAI's GPT-2 weights, and their license (the card's default).
DEFAULT_BASE_MODEL = "openai-community/gpt2"
GPT2_LICENSE = "mit"


@dataclass
class CardContext:
    """Everything the model card says, each value optional (missing ones render as "n/a").

    Attributes:
        repo_id: Hub id (or local folder) the usage snippet loads; default: the card's folder.
        model_name: display and model-index name; default: the last part of `repo_id`.
        base_model: Hub id of the GPT-2 checkpoint the weights come from; None when they do not
            come from a published checkpoint (random initialisation, a local folder).
        model_size: parameter count in words, e.g. "124M".
        license, language, tags: front matter (`tags` are added to the standard ones).
        labels: class names in id order (an id2label dict is accepted and converted).
        dataset_id: Hub dataset id (`ucirvine/sms_spam`); None for a custom data set.
        dataset_name: display name of the data.
        data_description: how the data was prepared (cleaning, balancing, split fractions).
        split_sizes: examples per split.
        train_test_overlap: validation/test texts also found in the training split.
        max_length: token length texts are truncated to.
        trainable_layers: which parameters trained, in words.
        trainable_parameters, total_parameters: parameter counts.
        hyperparameters: name -> value, as written on the command line.
        seed: random seed.
        training_time: wall-clock training time, in words.
        results: split -> metrics of `hf_spam.metrics` (Trainer's key prefixes allowed).
        results_threshold: the decision threshold `results` were measured at (the probability
            of label id 1); None: argmax of the model's own probabilities, as training measures.
        class_weights: the weights of the training loss per class, None when unweighted.
        best_epoch: the epoch whose checkpoint was kept (early stopping), None: the last.
        operating_point: `hf-spam calibrate`'s: goal, temperature, decision_threshold and the
            test split's figures before and after (`test`), None when not calibrated.
        confusion_matrix: rows = true label, columns = predicted, of `confusion_matrix_split`.
        confusion_matrix_split: split of the confusion matrix and per-class table.
        plots: image files relative to the card.
        framework_versions: package -> version; default: the installed versions.
    """

    repo_id: str | None = None
    model_name: str | None = None
    base_model: str | None = DEFAULT_BASE_MODEL
    model_size: str | None = None
    license: str = GPT2_LICENSE
    language: str = "en"
    tags: list[str] = field(default_factory=list)
    labels: list[str] | None = None
    dataset_id: str | None = SMS_SPAM_HUB_ID
    dataset_name: str | None = None
    data_description: str | None = None
    split_sizes: dict[str, int] = field(default_factory=dict)
    train_test_overlap: int | None = None
    max_length: int | None = None
    trainable_layers: str | None = None
    trainable_parameters: int | None = None
    total_parameters: int | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    training_time: str | None = None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    results_threshold: float | None = None
    class_weights: list[float] | None = None
    best_epoch: float | None = None
    operating_point: dict[str, Any] | None = None
    confusion_matrix: list[list[int]] | None = None
    confusion_matrix_split: str = "test"
    plots: list[str] = field(default_factory=list)
    framework_versions: dict[str, str] | None = None

    def __post_init__(self) -> None:
        # JSON null for a collection or a front-matter default means "not given".
        for name, empty in (("tags", list), ("plots", list), ("split_sizes", dict)):
            if getattr(self, name) is None:
                setattr(self, name, empty())
        self.hyperparameters = self.hyperparameters or {}
        self.results = self.results or {}
        self.license = self.license or GPT2_LICENSE
        self.language = self.language or "en"
        self.labels = _label_names(self.labels)
        self.confusion_matrix_split = self.confusion_matrix_split or "test"

    # -- conversions ------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> CardContext:
        """A context from plain values (e.g. JSON); an unknown key is an error naming it."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown model-card field(s) {', '.join(unknown)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, folder: str | os.PathLike) -> Path:
        """Write `card_context.json` into `folder` (atomically)."""
        return write_json(Path(folder) / CARD_CONTEXT_FILE, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> CardContext:
        """Read a `card_context.json`; errors name the file."""
        values = read_json(path, "model-card context")
        if not isinstance(values, dict):
            raise ModelLoadError(f"{path}: expected a JSON object")
        try:
            return cls.from_dict(values)
        except (TypeError, ValueError) as err:
            raise ModelLoadError(f"{path}: {err}") from None

    # -- builders ---------------------------------------------------------------------------

    @classmethod
    def from_folder(cls, folder: str | os.PathLike) -> CardContext:
        """The context of a model folder: its `card_context.json` when training saved one;
        otherwise rebuilt from `config.json` (labels), `all_results.json` (scores, split sizes,
        confusion matrix, parameter counts) and the metadata of its `README.md`. Details only
        the run knew (hyperparameters, data preparation) then show as n/a."""
        folder = Path(folder)
        if (folder / CARD_CONTEXT_FILE).is_file():
            return cls.load(folder / CARD_CONTEXT_FILE)
        values: dict[str, Any] = {"labels": read_config(folder).get("id2label")}
        values.update(_values_from_card(folder / "README.md"))
        if (folder / "all_results.json").is_file():
            values.update(_values_from_results(read_json(folder / "all_results.json")))
        return cls.from_dict(values)


def base_weights_license(model_name_or_path: str, init: str = "pretrained") -> str:
    """The license of the weights a run starts from: a saved hf_spam folder's card says it;
    OpenAI released GPT-2 under MIT."""
    readme = Path(model_name_or_path) / "README.md"
    if init == "pretrained" and readme.is_file():
        return _values_from_card(readme).get("license") or GPT2_LICENSE
    return GPT2_LICENSE


def load_card_context(folder: str | os.PathLike) -> dict[str, Any]:
    """`CardContext.from_folder(folder)` as plain values (what sharing renders from)."""
    return CardContext.from_folder(folder).to_dict()


def millions(count: int | None) -> str | None:
    """124439808 -> '124M', 1635810 -> '1.6M'."""
    if not count:
        return None
    return f"{count / 1e6:.0f}M" if count >= 1e7 else f"{count / 1e6:.1f}M"


def _label_names(labels: Mapping[Any, str] | Sequence[str] | None) -> list[str] | None:
    if isinstance(labels, Mapping):  # an id2label dict, possibly with JSON string keys
        labels = [labels[key] for key in sorted(labels, key=int)]
    return [str(label) for label in labels] if labels else None


def _values_from_results(results: Mapping[str, Any]) -> dict[str, Any]:
    """Card values from `all_results.json` (flat `<split>_<metric>` keys, `<split>_samples`,
    `confusion_matrix: {split: matrix}`)."""
    values: dict[str, Any] = {"results": {}, "split_sizes": {}}
    for split in SPLITS:
        scores = {
            key: value
            for key, value in split_metrics(dict(results), split).items()
            if is_number(value) and key != f"{split}_samples"  # a size, in split_sizes
        }
        if scores:
            values["results"][split] = scores
        if f"{split}_samples" in results:
            values["split_sizes"][split] = results[f"{split}_samples"]
    matrices = results.get("confusion_matrix") or {}
    if matrices.get("test"):
        values["confusion_matrix"] = matrices["test"]
    for key in ("trainable_parameters", "total_parameters"):
        if key in results:
            values[key] = results[key]
    if is_number(results.get("train_runtime")):
        values["training_time"] = f"{results['train_runtime']:.0f} s"
    return values


def _values_from_card(readme: Path) -> dict[str, Any]:
    """Base model, dataset, license and language from the card's metadata. Without a readable
    card the base model and dataset are unknown, and the new card says so rather than claim
    the defaults (GPT-2, SMS Spam Collection)."""
    import yaml
    from huggingface_hub import ModelCard

    values: dict[str, Any] = {"base_model": None, "dataset_id": None}
    if not readme.is_file():  # ModelCard.load would look the name up on the Hub
        return values
    try:
        data = ModelCard.load(readme).data
    except (ValueError, yaml.YAMLError):  # malformed metadata
        return values
    values["base_model"] = data.base_model
    values["dataset_id"] = data.datasets[0] if data.datasets else None
    if data.eval_results:
        values["dataset_name"] = data.eval_results[0].dataset_name
    for key in ("license", "language"):
        if getattr(data, key, None):
            values[key] = getattr(data, key)
    return values


__all__ = [
    "CARD_CONTEXT_FILE",
    "DEFAULT_BASE_MODEL",
    "GPT2_LICENSE",
    "CardContext",
    "base_weights_license",
    "load_card_context",
]
