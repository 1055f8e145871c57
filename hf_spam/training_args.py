"""The arguments of a training run: the model and what trains, `TrainingArguments` with the
book's defaults, and every check that can fail before any data or weights are loaded.

`HfArgumentParser` runs the dataclasses' `__post_init__` while parsing, so a bad value fails there
as one `UsageError` line naming the flag; `validate_arguments` checks the combinations again just
before a run (arguments may have been changed since they were parsed).
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import HfArgumentParser, TrainingArguments

from .configuration import GPT2_PRESETS, TRAINABLE_TOKEN_POSITIONS, GPTConfig
from .constants import CONFIG_NAME
from .data import DataArguments
from .errors import UsageError
from .files import check_output_dir, read_config
from .lora import BOOK_LORA_TARGETS, LORA_ALPHA_CONVENTIONS
from .outputs import RESUME_LAST, checkpoint_problems
from .trainer import TRAINABLE_POLICIES

logger = logging.getLogger(__name__)

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

    frozen_trunk_cache: bool = field(
        default=True,
        metadata={
            "help": "Compute the frozen blocks' output once per example and reuse it every epoch "
            "and evaluation (exact; switched off automatically when the frozen part has dropout)."
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


@dataclass
class ModelArguments(
    ReportingArguments, SpeedArguments, ClassifierKnobArguments, LoraArguments, BaseModelArguments
):
    """Every model flag in one object; its bases are --help's sections (last first: a dataclass
    takes its bases' fields in reverse order, so the fields read as the sections do)."""

    _argument_group_name = "model"  # for a plain HfArgumentParser, which ignores the parts

    def __post_init__(self) -> None:
        check_model_arguments(self)

    @property
    def writes_adapter(self) -> bool:
        """--save_adapter as given; by default on for LoRA the peft way from loadable weights."""
        if self.save_adapter is not None:
            return self.save_adapter
        peft_lora = self.trainable_layers == "lora" and self.lora_alpha_convention == "peft"
        return peft_lora and self.init == "pretrained"


@dataclass
class SpamTrainingArguments(TrainingArguments):
    """transformers' `TrainingArguments` with the book's defaults; every Trainer flag works."""

    _argument_group_name = "training"

    output_dir: str | None = field(
        default="runs/hf_spam", metadata={"help": "Where the model, metrics and plots go."}
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Write into a non-empty --output_dir (otherwise refused)."},
    )
    learning_rate: float = field(default=5e-5, metadata={"help": "AdamW learning rate."})
    weight_decay: float = field(default=0.1, metadata={"help": "AdamW weight decay."})
    lr_scheduler_type: str = field(
        default="constant", metadata={"help": "The book keeps the learning rate constant."}
    )
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Batch size."})
    per_device_eval_batch_size: int = field(default=32, metadata={"help": "Evaluation batch size."})
    num_train_epochs: float = field(default=5.0, metadata={"help": "Epochs."})
    seed: int = field(default=123, metadata={"help": "Random seed (model head, data order)."})
    eval_strategy: str = field(default="epoch", metadata={"help": "When to evaluate."})
    save_strategy: str = field(default="epoch", metadata={"help": "When to checkpoint."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept."})
    logging_steps: float = field(default=10, metadata={"help": "Log the training loss every N."})
    max_grad_norm: float = field(
        default=0.0, metadata={"help": "Gradient clipping norm; 0 = none, as in the book."}
    )
    train_sampling_strategy: str = field(
        default="group_by_length",
        metadata={
            "help": "'group_by_length' batches texts of similar length (less padding, faster); "
            "'book' the book's loop: its DataLoader order, batch for batch (its shuffle replayed "
            "from --seed), and its gradient accumulation (a short last group's loss divided by "
            "--gradient_accumulation_steps too); 'random' Trainer's shuffle; 'sequential'.",
            "choices": ["group_by_length", "book", "random", "sequential", "batch_rebalance"],
        },
    )
    remove_unused_columns: bool = field(
        default=False,
        metadata={
            "help": "Kept False: the collator picks its columns (example ids for the cache)."
        },
    )

    def __post_init__(self) -> None:
        # HfArgumentParser runs this while parsing: bad values fail here, as one line each.
        check_training_arguments(self)
        # On a machine without an accelerator, say "CPU" for the user: accelerate then sets up a
        # gloo process group under torchrun (otherwise each process would silently train alone)
        # and transformers accepts --bf16 (CPU autocast) instead of refusing it.
        if not torch.accelerator.is_available():
            self.use_cpu = True
        super().__post_init__()


# ------------------------------------------------------------------------------------------------
# Checks before any work
# ------------------------------------------------------------------------------------------------


def check_training_arguments(args: TrainingArguments) -> None:
    """Values `Trainer` would accept and then fail on, or silently train nothing with."""
    if not args.learning_rate > 0:
        raise TrainingSetupError(f"--learning_rate must be > 0, got {args.learning_rate}")
    for flag in ("per_device_train_batch_size", "per_device_eval_batch_size"):
        if getattr(args, flag) < 1:
            raise TrainingSetupError(f"--{flag} must be at least 1, got {getattr(args, flag)}")
    if args.gradient_accumulation_steps < 1:
        raise TrainingSetupError(
            f"--gradient_accumulation_steps must be at least 1, got {args.gradient_accumulation_steps}"
        )
    if not (args.num_train_epochs > 0 or args.max_steps > 0):
        raise TrainingSetupError(
            f"--num_train_epochs must be > 0 (or --max_steps > 0), got {args.num_train_epochs}: "
            "the run would train nothing"
        )
    resume = args.resume_from_checkpoint
    if resume and resume not in RESUME_LAST:
        if not Path(resume).is_dir():
            raise TrainingSetupError(f"--resume_from_checkpoint {resume}: no such folder")
        missing = checkpoint_problems(Path(resume))
        if missing:
            raise TrainingSetupError(
                f"--resume_from_checkpoint {resume} is not a complete checkpoint: {missing}"
            )


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


def _size_preset(name: str) -> str:
    key = Path(name).name
    return key if key in GPT2_PRESETS else "gpt2"


def _saved_config(model_args: ModelArguments) -> dict[str, Any] | None:
    """The `config.json` of a model folder given as --model_name_or_path, if it is one."""
    if (Path(model_args.model_name_or_path) / CONFIG_NAME).is_file():
        return read_config(model_args.model_name_or_path)
    return None


def expected_shape(model_args: ModelArguments) -> dict[str, int]:
    """emb_dim, n_heads and context_length of the model to build, known without any weights."""
    shape = {**GPT2_PRESETS[_size_preset(model_args.model_name_or_path)], "context_length": 1024}
    saved = _saved_config(model_args) if model_args.init == "pretrained" else None
    if saved:
        for ours, theirs in (("emb_dim", "n_embd"), ("n_heads", "n_head")):
            shape[ours] = int(saved.get(ours, saved.get(theirs, shape[ours])))
        shape["context_length"] = int(saved.get("context_length", saved.get("n_positions", 1024)))
    overrides = parse_config_overrides(model_args.config_overrides)
    return {**shape, **{k: v for k, v in overrides.items() if k in shape}}


def expected_context_length(model_args: ModelArguments) -> int:
    """The model's context length, known without downloading any weights."""
    return expected_shape(model_args)["context_length"]


def check_model_arguments(model_args: ModelArguments) -> None:
    """Choices and the model's shape, checked as soon as the arguments exist."""
    if model_args.trainable_layers not in TRAINABLE_POLICIES:
        raise TrainingSetupError(
            f"--trainable_layers {model_args.trainable_layers!r} is unknown; choose one of "
            f"{', '.join(TRAINABLE_POLICIES)}"
        )
    if model_args.init not in INIT_CHOICES:
        raise TrainingSetupError(f"--init must be one of {INIT_CHOICES}, got {model_args.init!r}")
    if model_args.lora_alpha_convention not in LORA_ALPHA_CONVENTIONS:
        raise TrainingSetupError(
            f"--lora_alpha_convention must be one of {', '.join(LORA_ALPHA_CONVENTIONS)}, "
            f"got {model_args.lora_alpha_convention!r}"
        )
    if model_args.lora_rank < 1:
        raise TrainingSetupError(f"--lora_rank must be at least 1, got {model_args.lora_rank}")
    if model_args.save_adapter and model_args.trainable_layers != "lora":
        raise TrainingSetupError(
            f"--save_adapter needs --trainable_layers lora (got {model_args.trainable_layers}): "
            "only LoRA trains adapters"
        )
    if model_args.save_adapter and model_args.init == "random":
        raise TrainingSetupError(
            "--save_adapter needs --init pretrained: an adapter is loaded onto its base weights "
            "again, and random ones cannot be loaded by name"
        )
    shape = expected_shape(model_args)
    if shape["n_heads"] < 1 or shape["emb_dim"] % shape["n_heads"]:
        raise TrainingSetupError(
            f"--config_overrides: n_heads ({shape['n_heads']}) must divide emb_dim "
            f"({shape['emb_dim']})"
        )
    try:  # every other field GPTConfig checks (sizes, drop_rate, ...), before any work
        GPTConfig(**{**parse_config_overrides(model_args.config_overrides), **shape})
    except ValueError as err:
        raise TrainingSetupError(f"--config_overrides: {err}") from None


def validate_arguments(
    model_args: ModelArguments, data_args: DataArguments, training_args: SpamTrainingArguments
) -> None:
    """Fail before any work with a message that says what to change (arguments may have been
    changed since they were parsed, so everything is checked again)."""
    check_model_arguments(model_args)
    check_training_arguments(training_args)
    if model_args.trainable_layers == "lora" and importlib.util.find_spec("peft") is None:
        raise TrainingSetupError(
            "--trainable_layers lora needs peft: pip install 'hf_spam[lora]' (or pip install peft), "
            "or choose another --trainable_layers"
        )
    check_book_knobs(model_args, data_args, training_args)
    context_length = expected_context_length(model_args)
    if data_args.max_length is not None and data_args.max_length > context_length:
        raise TrainingSetupError(
            f"--max_length {data_args.max_length} is longer than the model's context length "
            f"({context_length}); lower --max_length or raise context_length"
        )
    if training_args.push_to_hub:
        from .sharing import check_repo_id, hub_model_id, require_token

        token = require_token(training_args.hub_token)
        training_args.hub_model_id = hub_model_id(training_args, token)
        check_repo_id(training_args.hub_model_id)
    resuming = bool(training_args.resume_from_checkpoint)
    check_output_dir(training_args.output_dir, training_args.overwrite_output_dir or resuming)


def check_book_knobs(
    model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments
) -> None:
    """The book's knobs only make sense together as in additional_experiments.py.

    `last` / `first` read a fixed position of a fixed-length row: the texts must be padded to
    one length (`--context_length`) or never padded (`--no_padding`, batches of one).
    """
    fixed = data_args.pad_to is not None
    if model_args.no_padding:
        if fixed:
            given = data_args.context_length or "longest_training_example"
            raise TrainingSetupError(f"--no_padding conflicts with --context_length {given}")
        for flag in ("per_device_train_batch_size", "per_device_eval_batch_size"):
            if getattr(training_args, flag) != 1:
                logger.warning("--no_padding: --%s %s -> 1", flag, getattr(training_args, flag))
                setattr(training_args, flag, 1)
    elif model_args.trainable_token_pos != "flexible" and not fixed:
        raise TrainingSetupError(
            f"--trainable_token_pos {model_args.trainable_token_pos} reads a fixed position of "
            "padded texts: add --context_length longest_training_example (the book), "
            "model_context_length or N, or --no_padding"
        )


def model_config_overrides(model_args: ModelArguments, padded_to: int | None) -> dict[str, Any]:
    """GPTConfig fields from the flags: --config_overrides, then the book's knobs.

    `padded_to` is the length every text was padded to (None: padded per batch or not at
    all); the model rebuilds the book's rows at that length for `last` / `first`.
    """
    overrides = parse_config_overrides(model_args.config_overrides)
    overrides.update(
        trainable_token_pos=model_args.trainable_token_pos,
        average_embeddings=model_args.average_embeddings,
        disable_causal_mask=model_args.disable_causal_mask,
        padded_length=padded_to if model_args.trainable_token_pos != "flexible" else None,
    )
    return overrides


def parse_train_arguments(
    argv: list[str] | None = None,
) -> tuple[ModelArguments, DataArguments, SpamTrainingArguments]:
    """`hf-spam train` flags -> the three argument dataclasses (errors raise `UsageError`)."""
    parser = HfArgumentParser((ModelArguments, DataArguments, SpamTrainingArguments))
    return tuple(parser.parse_args_into_dataclasses(args=argv))  # type: ignore[return-value]
