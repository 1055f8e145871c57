"""The wire format: the requests and answers of the two protocols clients already speak.

* Text Embeddings Inference's `POST /predict` (its `router/src/http/types.rs`): `inputs` is a
  text, a pair `[text, text]`, or a batch `[[text], [text], ...]`; `truncate`,
  `truncation_direction` and `raw_scores` as TEI has them. A single text is answered with a list
  of `{label, score}`, a batch with a list of those lists; errors are `{error, error_type}`.
* The Hugging Face Inference API's text-classification task at `POST /` (what
  `huggingface_hub.InferenceClient(url).text_classification(text)` sends): `inputs` a text or a
  list of texts, `parameters` `top_k` and `function_to_apply`. It is answered with one list of
  `{label, score}` per text, always as a list of lists, as the Inference API does.

Requests are strict (no string for a boolean, no unknown field), so a mistake is one 422 naming
the field instead of a guess. An answer lists the predicted label first (at the model's decision
threshold, when its config has one), then the others by score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..inference.files import Prediction

__all__ = [
    "ClassificationRequest",
    "ErrorBody",
    "PredictRequest",
    "ranked",
    "validation_message",
]

#: TEI's error kinds (`ErrorType` in its router), as they appear in `error_type`.
ErrorType = Literal["unhealthy", "backend", "overloaded", "validation", "tokenizer", "empty"]


class ErrorBody(BaseModel):
    """Every error answer: one line, and its kind (TEI's `ErrorResponse`)."""

    error: str
    error_type: ErrorType


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _text_at(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where} must be a text (a JSON string), got {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", dict: "an object",
             list: "an array", type(None): "null"}  # fmt: skip
    return names.get(type(value), type(value).__name__)


class PredictRequest(_Strict):
    """TEI's `PredictRequest`. A pair `[text, text_pair]` is refused: the model classifies single
    texts (a batch of one text each is `[[text], [text]]`, or a plain list at `POST /`)."""

    inputs: str | list[list[str]] = Field(
        description="A text, or a batch of single texts [[text], [text], ...].",
        examples=["WIN a free prize, call now"],
    )
    truncate: bool | None = Field(
        default=None,
        description="Cut texts longer than the model's context (default: true, as in training); "
        "false answers 422 for such a text.",
    )
    truncation_direction: Literal["right", "Right", "left", "Left"] = Field(
        default="right", description="Only right: a text keeps its first tokens, as in training."
    )
    raw_scores: bool = Field(default=False, description="The logits instead of probabilities.")

    @field_validator("inputs", mode="before")
    @classmethod
    def _shape(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value
        if not isinstance(value, list):
            raise ValueError(f"must be a text or a batch [[text], ...], got {_json_type(value)}")
        if not value:
            raise ValueError("an empty batch; send at least one text")
        if isinstance(value[0], str):
            if len(value) == 2:
                raise ValueError(
                    "a pair [text, text_pair]: this model classifies single texts; send a batch "
                    "as [[text], [text], ...] (or a plain list of texts to POST /)"
                )
            raise ValueError(
                "a batch is a list of one-text lists, [[text], [text], ...] (or send a plain "
                "list of texts to POST /)"
            )
        for number, item in enumerate(value):
            if not isinstance(item, list) or len(item) != 1:
                shape = f"{len(item)} texts" if isinstance(item, list) else _json_type(item)
                raise ValueError(f"item {number} must be a one-text list [text], got {shape}")
            _text_at(item[0], f"item {number}")
        return value

    @field_validator("truncation_direction")
    @classmethod
    def _right_only(cls, value: str) -> str:
        if value.lower() != "right":
            raise ValueError(
                "only 'right' is served: texts keep their first tokens, as in training"
            )
        return value

    @property
    def texts(self) -> list[str]:
        return [self.inputs] if isinstance(self.inputs, str) else [item[0] for item in self.inputs]

    @property
    def batched(self) -> bool:
        return not isinstance(self.inputs, str)


class ClassificationParameters(_Strict):
    """The Inference API's text-classification parameters."""

    top_k: int | None = Field(default=None, ge=1, description="Answer only the k best labels.")
    function_to_apply: Literal["sigmoid", "softmax", "none"] | None = Field(
        default=None, description="Scores from the logits (default: the model's rule)."
    )


class ClassificationRequest(_Strict):
    """The Inference API's text-classification request. `options` (the Inference API's
    `wait_for_model`, `use_cache`) is accepted and has no effect here: the model is loaded."""

    inputs: str | list[str] = Field(description="A text or a list of texts.")
    parameters: ClassificationParameters | None = None
    options: dict[str, Any] | None = None

    @field_validator("inputs", mode="before")
    @classmethod
    def _texts(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value
        if not isinstance(value, list):
            raise ValueError(f"must be a text or a list of texts, got {_json_type(value)}")
        if not value:
            raise ValueError("an empty list; send at least one text")
        for number, item in enumerate(value):
            _text_at(item, f"item {number}")
        return value

    @property
    def texts(self) -> list[str]:
        return [self.inputs] if isinstance(self.inputs, str) else list(self.inputs)


def ranked(prediction: Prediction, top_k: int | None = None) -> list[dict[str, Any]]:
    """`{label, score}` for every class, the predicted label first, then by score (the order
    TEI and the pipeline give when the prediction is the best score), cut to `top_k`."""
    others = sorted(
        (label for label in prediction.scores if label != prediction.label),
        key=lambda label: -prediction.scores[label],
    )
    order = [prediction.label, *others][:top_k]
    return [{"label": label, "score": prediction.scores[label]} for label in order]


def _location(loc: Sequence[Any]) -> str:
    """A pydantic error location as a field path: `parameters.top_k`, `inputs`, `body`."""
    parts = [str(part) for part in loc if not isinstance(part, int)]
    return ".".join(parts) or "body"


def validation_message(err: ValidationError) -> str:
    """The first problem of a request, as one line naming the field."""
    first = err.errors(include_url=False)[0]
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "json_invalid":
        reason = first.get("ctx", {}).get("error", "")
        return f"body: invalid JSON ({reason})" if reason else "body: invalid JSON"
    if first["type"] == "extra_forbidden":
        return f"{_location(first['loc'])}: unknown field"
    more = len(err.errors()) - 1
    tail = f" (and {more} more problem{'s' * (more > 1)})" if more else ""
    return f"{_location(first['loc'])}: {message}{tail}"
