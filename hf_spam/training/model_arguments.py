"""The model flags of a training run (--help's sections: base model, LoRA, the book's knobs,
speed, reporting) and the checks that need no data or weights: choices, and the shape of the
model to build (from the size preset, a saved folder's config.json and --config_overrides).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ..constants import CONFIG_NAME
from ..errors import UsageError
from ..files import read_config
from ..hub.card import base_weights_license
from ..model.configuration import GPT2_PRESETS, TRAINABLE_TOKEN_POSITIONS, GPTConfig
from ..model.lora import BOOK_LORA_TARGETS, LORA_ALPHA_CONVENTIONS
from .policies import TRAINABLE_POLICIES, TrainablePolicy

INIT_CHOICES = ("pretrained", "random")


class TrainingSetupError(UsageError):
    """Arguments that cannot work together, found before any data or weights are loaded."""


@dataclass
class BaseModelArguments:
    """Which model starts the run and which of its parts train."""

    _argument_group_name = "model"

    model_name_or_path: str = field(
        default="openai-community/gpt2",
        metadata={
            "help": "GPT-2 weights to start from: a Hub id (openai-community/gpt2[-medium|-large|"
            "-xl]), a folder or a .safetensors file; or a folder saved by hf_spam."
        },
    )
    init: str = field(
        default="pretrained",
        metadata={
            "help": "'pretrained' loads the weights; 'random' starts from the book's random "
            "weights of the same size (PyTorch's layer initialisation from --seed, drawn in the "
            "book's order: the book's row 10; no download).",
            "choices": list(INIT_CHOICES),
        },
    )
    config_overrides: str | None = field(
        default=None,
        metadata={
            "help": "Comma-separated GPTConfig fields, e.g. 'drop_rate=0.1' or, with --init random, "
            "'emb_dim=64,n_layers=2,n_heads=4'."
        },
    )
    trainable_layers: str = field(
        default="last_block",
        metadata={
            "help": "What trains: 'head' (the new output layer; 'last_layer' is the book's name "
            "for it), 'last_block' (+ the last transformer block and the final norm: the book), "
            "'last_two_blocks', 'all', or 'lora' (low-rank adapters + head; needs peft).",
            "choices": list(TRAINABLE_POLICIES),
        },
    )


@dataclass
class LoraArguments:
    """Low-rank adapters for --trainable_layers lora, as the book's appendix E adds them."""

    _argument_group_name = "LoRA"

    lora_rank: int = field(default=16, metadata={"help": "LoRA rank r (the book's row 11: 16)."})
    lora_alpha: float = field(
        default=16.0,
        metadata={"help": "LoRA alpha, read as --lora_alpha_convention says (book's row 11: 16)."},
    )
    lora_alpha_convention: str = field(
        default="book",
        metadata={
            "help": "'book': LoRA as the book's replace_linear_with_lora builds it: the update is "
            "alpha * x @ A @ B, A drawn as the book draws it (from --seed, in the book's order), "
            "and the new head carries an adapter too, so the book's --lora_rank/--lora_alpha rows "
            "mean what they mean in the book; 'peft': scaled by alpha / rank, as peft and most "
            "LoRA papers read lora_alpha, head trained without an adapter.",
            "choices": list(LORA_ALPHA_CONVENTIONS),
        },
    )
    lora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the LoRA path."})
    lora_target_modules: str = field(
        default=BOOK_LORA_TARGETS,
        metadata={
            "help": "Comma-separated module names that get LoRA adapters (default: every linear "
            "layer of every block, as the book's replace_linear_with_lora)."
        },
    )
    save_adapter: bool | None = field(
        default=None,
        metadata={
            "help": "With --trainable_layers lora, also write the trained adapters as a peft "
            "adapter folder, <output_dir>/adapter, for PeftModel.from_pretrained on the base "
            "weights (default: on with --lora_alpha_convention peft, off with book).",
            "nargs": "?",  # a bare --save_adapter means true, as for the plain bool flags
            "const": True,
        },
    )


@dataclass
class ClassifierKnobArguments:
    """Where the head reads and how the GPT attends: the flags of the book's ch06 experiments."""

    _argument_group_name = "the book's classifier knobs"

    trainable_token_pos: str = field(
        default="flexible",
        metadata={
            "help": "Where the head reads (the book's flag): 'flexible' the last real token (the "
            "book's row 16, any padding); 'last' / 'first' position -1 / 0 of texts padded to "
            "--context_length, pads read as tokens, no padding mask (the book's main recipe is "
            "'last' with --context_length longest_training_example).",
            "choices": list(TRAINABLE_TOKEN_POSITIONS),
        },
    )
    average_embeddings: bool = field(
        default=False,
        metadata={"help": "Mean over positions instead of one position (the book's row 19)."},
    )
    disable_causal_mask: bool = field(
        default=False,
        metadata={"help": "Attention in both directions (the book's row 17)."},
    )
    no_padding: bool = field(
        default=False,
        metadata={
            "help": "Batches of one text, never padded (the book's rows 14-15; use "
            "--gradient_accumulation_steps 8 for the book's effective batch of 8)."
        },
    )


@dataclass
class SpeedArguments:
    """Exact shortcuts: the same numbers with less work."""

    _argument_group_name = "speed"

    frozen_trunk_cache: bool | None = field(
        default=None,
        metadata={
            "help": "Compute the frozen blocks' output once per example and reuse it every epoch "
            "and evaluation (exact). Default: on wherever the run has a frozen trunk without "
            "dropout; true asks for it and warns when it cannot be; false switches it off."
        },
    )
    trunk_cache_dir: str | None = field(
        default=None,
        metadata={
            "help": "Where the frozen-trunk feature store lives (default: under the Hugging Face "
            "datasets cache); runs with the same frozen weights and data reuse it."
        },
    )
    skip_padding_work: bool = field(
        default=True,
        metadata={
            "help": "Run the top block only at each text's last token and group texts by length "
            "(same results, less work); false runs every position (for benchmarks)."
        },
    )


@dataclass
class ReportingArguments:
    """What the run records besides the model: the book's training-set curves, the card."""

    _argument_group_name = "reporting"

    eval_on_train: bool = field(
        default=True,
        metadata={"help": "Also evaluate on the training split each epoch (the book's plots)."},
    )
    license: str | None = field(
        default=None,
        metadata={
            "help": "License on the model card (default: the base weights' license: mit for "
            "OpenAI's GPT-2, or the license in a saved hf_spam folder's card)."
        },
    )


#: What ModelArguments works out from its flags, once; a flag set later clears it.
_RESOLVED = ("policy", "overrides", "saved_config", "shape")


@dataclass
class ModelArguments(
    ReportingArguments, SpeedArguments, ClassifierKnobArguments, LoraArguments, BaseModelArguments
):
    """Every model flag in one object; its bases are --help's sections (last first: a dataclass
    takes its bases' fields in reverse order, so the fields read as the sections do).

    The flags are worked out once, into typed attributes every later step reads: `policy` (the
    `--trainable_layers` row), `overrides` (`--config_overrides`, typed), `saved_config` (the
    `config.json` of a folder given as `--model_name_or_path`), `shape` and `context_length`
    (the model to build, known without any weights). Changing a flag afterwards works them out
    again on the next read.
    """

    _argument_group_name = "model"  # for a plain HfArgumentParser, which ignores the parts

    def __post_init__(self) -> None:
        check_model_arguments(self)

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        for resolved in _RESOLVED:
            self.__dict__.pop(resolved, None)

    @cached_property
    def policy(self) -> TrainablePolicy:
        """The `--trainable_layers` row of `TRAINABLE_POLICIES`."""
        if self.trainable_layers not in TRAINABLE_POLICIES:
            raise TrainingSetupError(
                f"--trainable_layers {self.trainable_layers!r} is unknown; choose one of "
                f"{', '.join(TRAINABLE_POLICIES)}"
            )
        return TRAINABLE_POLICIES[self.trainable_layers]

    @cached_property
    def overrides(self) -> dict[str, Any]:
        """`--config_overrides` as typed GPTConfig fields."""
        return parse_config_overrides(self.config_overrides)

    @cached_property
    def saved_config(self) -> dict[str, Any] | None:
        """The `config.json` of a model folder given as --model_name_or_path, if it is one."""
        if (Path(self.model_name_or_path) / CONFIG_NAME).is_file():
            return read_config(self.model_name_or_path)
        return None

    @property
    def size_preset(self) -> str:
        """The GPT-2 size named by --model_name_or_path's last part (gpt2 when none is)."""
        key = Path(self.model_name_or_path).name
        return key if key in GPT2_PRESETS else "gpt2"

    @property
    def continues_saved_model(self) -> bool:
        """--model_name_or_path is a folder this package saved: the run continues from it."""
        return (self.saved_config or {}).get("model_type") == GPTConfig.model_type

    @cached_property
    def shape(self) -> dict[str, int]:
        """emb_dim, n_heads and context_length of the model to build, known without weights."""
        shape = {**GPT2_PRESETS[self.size_preset], "context_length": 1024}
        saved = self.saved_config if self.init == "pretrained" else None
        if saved:
            for ours, theirs in (("emb_dim", "n_embd"), ("n_heads", "n_head")):
                shape[ours] = int(saved.get(ours, saved.get(theirs, shape[ours])))
            shape["context_length"] = int(
                saved.get("context_length", saved.get("n_positions", 1024))
            )
        return {**shape, **{k: v for k, v in self.overrides.items() if k in shape}}

    @property
    def context_length(self) -> int:
        """The model's context length, known without downloading any weights."""
        return self.shape["context_length"]

    @property
    def card_license(self) -> str:
        """--license, else the license of the weights the run starts from."""
        return self.license or base_weights_license(self.model_name_or_path, self.init)

    @property
    def writes_adapter(self) -> bool:
        """--save_adapter as given; by default on for LoRA the peft way from loadable weights."""
        if self.save_adapter is not None:
            return self.save_adapter
        peft_lora = self.policy.adapters and self.lora_alpha_convention == "peft"
        return peft_lora and self.init == "pretrained"

    def config_overrides_for(self, padded_to: int | None) -> dict[str, Any]:
        """GPTConfig fields from the flags: --config_overrides, then the book's knobs.

        `padded_to` is the length every text was padded to (None: padded per batch or not at
        all); the model rebuilds the book's rows at that length for `last` / `first`.
        """
        return {
            **self.overrides,
            "trainable_token_pos": self.trainable_token_pos,
            "average_embeddings": self.average_embeddings,
            "disable_causal_mask": self.disable_causal_mask,
            "padded_length": padded_to if self.trainable_token_pos != "flexible" else None,
        }


def parse_config_overrides(text: str | None) -> dict[str, Any]:
    """`'emb_dim=64,drop_rate=0.1'` -> `{'emb_dim': 64, 'drop_rate': 0.1}`, typed by GPTConfig."""
    if not text:
        return {}
    defaults = GPTConfig()
    overrides: dict[str, Any] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not hasattr(defaults, key):
            raise TrainingSetupError(
                f"--config_overrides: {item!r} is not FIELD=VALUE with a GPTConfig field "
                "(e.g. emb_dim=64,n_layers=2,n_heads=4,drop_rate=0.1)"
            )
        kind = type(getattr(defaults, key))
        try:
            overrides[key] = (
                value.strip().lower() in ("1", "true", "yes") if kind is bool else kind(value)
            )
        except ValueError as err:
            raise TrainingSetupError(
                f"--config_overrides: {key} needs a {kind.__name__}, got {value!r}"
            ) from err
    return overrides


def check_model_arguments(model_args: ModelArguments) -> None:
    """Choices and the model's shape, checked as soon as the arguments exist."""
    policy = model_args.policy
    if model_args.init not in INIT_CHOICES:
        raise TrainingSetupError(f"--init must be one of {INIT_CHOICES}, got {model_args.init!r}")
    if model_args.lora_alpha_convention not in LORA_ALPHA_CONVENTIONS:
        raise TrainingSetupError(
            f"--lora_alpha_convention must be one of {', '.join(LORA_ALPHA_CONVENTIONS)}, "
            f"got {model_args.lora_alpha_convention!r}"
        )
    if model_args.lora_rank < 1:
        raise TrainingSetupError(f"--lora_rank must be at least 1, got {model_args.lora_rank}")
    if model_args.save_adapter and not policy.adapters:
        raise TrainingSetupError(
            f"--save_adapter needs --trainable_layers lora (got {model_args.trainable_layers}): "
            "only LoRA trains adapters"
        )
    if model_args.save_adapter and model_args.init == "random":
        raise TrainingSetupError(
            "--save_adapter needs --init pretrained: an adapter is loaded onto its base weights "
            "again, and random ones cannot be loaded by name"
        )
    shape = model_args.shape
    if shape["n_heads"] < 1 or shape["emb_dim"] % shape["n_heads"]:
        raise TrainingSetupError(
            f"--config_overrides: n_heads ({shape['n_heads']}) must divide emb_dim "
            f"({shape['emb_dim']})"
        )
    try:  # every other field GPTConfig checks (sizes, drop_rate, ...), before any work
        GPTConfig(**{**model_args.overrides, **shape})
    except ValueError as err:
        raise TrainingSetupError(f"--config_overrides: {err}") from None
