"""The model a server answers with: loaded once, run through the bulk prediction path.

`load_classifier` checks a local folder before anything is built (`check_classifier_folder`) and
takes anything else as a Hub id, as `predict` does; the server then classifies with
`classify_bulk`, the path of `hf-spam predict` (length-sorted batches, the model's decision
threshold and temperature as its config holds them), so its answers are `predict`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..inference.bulk import classify_bulk
from ..inference.files import Prediction
from ..inference.load import label_names, load_classifier

__all__ = ["ServedModel", "load_served_model", "package_version"]


def package_version() -> str:
    """hf_spam's version, as `GET /info` and the OpenAPI page report it."""
    import hf_spam

    return hf_spam.__version__


@dataclass
class ServedModel:
    """A loaded classifier and the name it is served under."""

    model_id: str
    model: Any
    tokenizer: Any

    @property
    def labels(self) -> list[str]:
        return label_names(self.model.config)

    @property
    def context_length(self) -> int:
        """Tokens a text keeps: the tokenizer's `model_max_length` (what the bulk path and the
        pipeline truncate to, and training's cut), within the model's positions."""
        length = self.tokenizer.model_max_length
        config = self.model.config
        positions = getattr(config, "context_length", None) or getattr(config, "n_positions", None)
        return min(length, positions) if positions else length

    def predict(
        self, texts: list[str], function_to_apply: str | None = None, batch_size: int = 64
    ) -> list[Prediction]:
        """One prediction per text, in order, from the bulk path."""
        return list(
            classify_bulk(
                self.model,
                self.tokenizer,
                texts,
                batch_size=batch_size,
                window_size=max(len(texts), 1),
                progress=False,
                function_to_apply=function_to_apply,
            )
        )

    def token_counts(self, texts: list[str]) -> list[int]:
        """Each text's length in tokens before any cut (for `truncate: false`)."""
        encoded = self.tokenizer(texts, truncation=False, verbose=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def info(self, **limits: Any) -> dict[str, Any]:
        """`GET /info`: what the model is, how texts are cut and decided, the server's limits."""
        config = self.model.config
        context = self.context_length
        return {
            "model_id": self.model_id,
            "model_type": config.model_type,
            "model_dtype": str(self.model.dtype).removeprefix("torch."),
            "device": str(self.model.device),
            "labels": self.labels,
            "problem_type": config.problem_type,
            "max_input_length": context,
            "auto_truncate": True,
            "truncation": f"texts longer than {context} tokens are cut to their first {context}, "
            "as in training (TEI's truncate: false answers 422 instead)",
            "decision_threshold": getattr(config, "decision_threshold", None),
            "temperature": getattr(config, "temperature", 1.0),
            **limits,
            "version": package_version(),
        }


def load_served_model(
    model: str,
    *,
    device: str | None = None,
    trust_remote_code: bool = False,
    num_threads: int | None = None,
) -> ServedModel:
    """The classifier of a folder or Hub id, checked and loaded as `predict` loads it;
    `num_threads` sets torch's intra-op threads (None: torch's default)."""
    if num_threads is not None:
        import torch

        torch.set_num_threads(num_threads)
    classifier = load_classifier(model, device=device, trust_remote_code=trust_remote_code)
    classifier.model.eval()
    return ServedModel(model_id=model, model=classifier.model, tokenizer=classifier.tokenizer)
