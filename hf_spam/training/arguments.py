"""The arguments of a training run: `TrainingArguments` with the book's defaults, the model's
flags (`model_arguments`) and the data's, and every check of them together that can fail before
any data or weights are loaded.

`HfArgumentParser` runs the dataclasses' `__post_init__` while parsing, so a bad value fails there
as one `UsageError` line naming the flag; `validate_arguments` checks the combinations again just
before a run (arguments may have been changed since they were parsed).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import HfArgumentParser, TrainingArguments

from ..data import DataArguments
from ..files import check_output_dir
from .class_weights import check_class_weights
from .model_arguments import (
    ModelArguments,
    TrainingSetupError,
    check_model_arguments,
)
from .outputs import RESUME_LAST, checkpoint_problems

logger = logging.getLogger(__name__)


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
    class_weights: str | None = field(
        default=None,
        metadata={
            "help": "Weight the training cross-entropy per class: 'balanced' (scikit-learn's "
            "compute_class_weight: n / (classes x count), counted on the training split) or one "
            "weight per label in id order, e.g. '1.0,3.5'. With --no_balance, trains on every "
            "text instead of undersampling. Validation and test losses stay unweighted."
        },
    )
    early_stopping_patience: int | None = field(
        default=None,
        metadata={
            "help": "Stop after N evaluations without improvement of --metric_for_best_model "
            "(default eval_loss) and keep the best checkpoint (transformers' "
            "EarlyStoppingCallback; turns on --load_best_model_at_end)."
        },
    )
    early_stopping_threshold: float = field(
        default=0.0,
        metadata={"help": "How much --metric_for_best_model must improve to count, with patience."},
    )
    ddp_find_unused_parameters: bool | None = field(
        default=False,
        metadata={
            "help": "DDP's find_unused_parameters. False: every trainable parameter of every "
            "--trainable_layers policy is used in each step, so DDP skips the extra graph walk."
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
        prepare_early_stopping(self)
        # On a machine without an accelerator, say "CPU" for the user: accelerate then sets up a
        # gloo process group under torchrun (otherwise each process would silently train alone)
        # and transformers accepts --bf16 (CPU autocast) instead of refusing it.
        if not torch.accelerator.is_available():
            self.use_cpu = True
        if self.fp16 and self.use_cpu:
            # Refused, not warned: CPU training has no fp16 mixed precision (it would run in
            # fp32, and the card and the run's name would say fp16).
            raise TrainingSetupError(
                "--fp16 needs a GPU: on CPU there is no fp16 mixed precision and the run would "
                "train in fp32; use --bf16 (CPU autocast) or leave it out"
            )
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
    if not math.isfinite(args.num_train_epochs):
        raise TrainingSetupError(
            f"--num_train_epochs must be a finite number, got {args.num_train_epochs}"
        )
    if args.max_steps != -1 and args.max_steps < 1:
        raise TrainingSetupError(
            f"--max_steps must be a positive number of steps (or -1, the default: train "
            f"--num_train_epochs), got {args.max_steps}"
        )
    if not 0 <= args.seed < 2**32:
        raise TrainingSetupError(f"--seed must be between 0 and {2**32 - 1}, got {args.seed}")
    if not (args.num_train_epochs > 0 or args.max_steps > 0):
        raise TrainingSetupError(
            f"--num_train_epochs must be > 0 (or --max_steps > 0), got {args.num_train_epochs}: "
            "the run would train nothing"
        )
    check_class_weights(getattr(args, "class_weights", None))
    resume = args.resume_from_checkpoint
    if resume and resume not in RESUME_LAST:
        if not Path(resume).is_dir():
            raise TrainingSetupError(f"--resume_from_checkpoint {resume}: no such folder")
        missing = checkpoint_problems(Path(resume))
        if missing:
            raise TrainingSetupError(
                f"--resume_from_checkpoint {resume} is not a complete checkpoint: {missing}"
            )


def prepare_early_stopping(args: SpamTrainingArguments) -> None:
    """What `EarlyStoppingCallback` needs, turned on for `--early_stopping_patience`: the best
    checkpoint kept (`load_best_model_at_end`), checkpoints where evaluations are (the save
    strategy follows the evaluation's when left at its default). A combination that cannot
    work is refused, naming the flags. `metric_for_best_model` (default `loss`) is checked
    against the metrics of the data's labels by `check_best_metric`."""
    patience = args.early_stopping_patience
    if patience is None:
        if args.early_stopping_threshold:
            raise TrainingSetupError("--early_stopping_threshold needs --early_stopping_patience")
        return
    if patience < 1:
        raise TrainingSetupError(f"--early_stopping_patience must be at least 1, got {patience}")
    if not args.early_stopping_threshold >= 0:
        raise TrainingSetupError(
            f"--early_stopping_threshold must be 0 or more, got {args.early_stopping_threshold}"
        )
    eval_strategy, save_strategy = (
        str(getattr(value, "value", value)) for value in (args.eval_strategy, args.save_strategy)
    )
    for flag, value in (("eval_strategy", eval_strategy), ("save_strategy", save_strategy)):
        if value == "no":
            raise TrainingSetupError(
                f"--early_stopping_patience needs evaluations and checkpoints; --{flag} no "
                "contradicts it"
            )
    if save_strategy not in (eval_strategy, "best"):
        if save_strategy != "epoch":  # the default follows the evaluations, a choice does not
            raise TrainingSetupError(
                f"--early_stopping_patience keeps the best checkpoint: --save_strategy "
                f"{save_strategy} must match --eval_strategy {eval_strategy} (or be 'best')"
            )
        args.save_strategy = eval_strategy
        if eval_strategy == "steps" and args.eval_steps:
            args.save_steps = args.eval_steps
        logger.info("--early_stopping_patience: --save_strategy %s", eval_strategy)
    args.load_best_model_at_end = True


def check_best_metric(args: TrainingArguments, label_names: list[str]) -> None:
    """`--metric_for_best_model` must be one the validation split reports (`eval_` optional)."""
    if not args.metric_for_best_model:
        return
    name = args.metric_for_best_model.removeprefix("eval_")
    averaged = [f"{m}_{a}" for m in ("precision", "recall", "f1") for a in ("macro", "weighted")]
    per_label = [f"{m}_{label}" for m in ("precision", "recall", "f1") for label in label_names]
    known = ["loss", "accuracy", *averaged, *per_label]
    if name not in known:
        raise TrainingSetupError(
            f"--metric_for_best_model {args.metric_for_best_model}: not a validation metric; "
            f"choose from {', '.join(known)}"
        )


def validate_arguments(
    model_args: ModelArguments, data_args: DataArguments, training_args: SpamTrainingArguments
) -> None:
    """Fail before any work with a message that says what to change (arguments may have been
    changed since they were parsed, so everything is checked again)."""
    check_model_arguments(model_args)
    check_training_arguments(training_args)
    if model_args.policy.adapters and importlib.util.find_spec("peft") is None:
        raise TrainingSetupError(
            "--trainable_layers lora needs peft: pip install 'hf_spam[lora]' (or pip install peft), "
            "or choose another --trainable_layers"
        )
    check_book_knobs(model_args, data_args, training_args)
    check_fsdp1_freezing(model_args, training_args)
    check_zero3_lora(model_args, training_args)
    context_length = model_args.context_length
    if data_args.max_length is not None and data_args.max_length > context_length:
        raise TrainingSetupError(
            f"--max_length {data_args.max_length} is longer than the model's context length "
            f"({context_length}); lower --max_length or raise context_length"
        )
    if training_args.push_to_hub:
        from ..hub.sharing import check_repo_id, hub_model_id, require_token

        token = require_token(training_args.hub_token)
        training_args.hub_model_id = hub_model_id(training_args, token)
        check_repo_id(training_args.hub_model_id)


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def check_fsdp1_freezing(model_args: ModelArguments, training_args: TrainingArguments) -> None:
    """FSDP1 flattens a module's parameters into one tensor, which cannot be part frozen: with
    frozen layers it needs `use_orig_params`. FSDP turned on by the environment without it gets
    it set (the plugin's default there is False); a configuration that sets it false is refused."""
    policy = model_args.policy
    if policy.embeddings and not policy.adapters:
        return  # --trainable_layers all: nothing frozen
    config = training_args.fsdp_config or {}
    if training_args.fsdp and str(config.get("version", 2)) == "1":
        if str(config.get("use_orig_params", "true")).lower() == "false":
            raise TrainingSetupError(
                f"--trainable_layers {model_args.trainable_layers} freezes layers, which FSDP1 "
                "can shard only with use_orig_params: set it true in --fsdp_config or use FSDP2"
            )
    elif _env_true("ACCELERATE_USE_FSDP") and os.environ.get("FSDP_VERSION", "1") == "1":
        given = os.environ.get("FSDP_USE_ORIG_PARAMS")
        if given is not None and not _env_true("FSDP_USE_ORIG_PARAMS"):
            raise TrainingSetupError(
                f"--trainable_layers {model_args.trainable_layers} freezes layers, which FSDP1 "
                "can shard only with use_orig_params: set fsdp_use_orig_params: true in the "
                "accelerate configuration or use fsdp_version: 2"
            )
        if given is None:
            logger.info("FSDP1 with frozen layers: use_orig_params set (accelerate's default off)")
            os.environ["FSDP_USE_ORIG_PARAMS"] = "true"


def _zero_stage(training_args: TrainingArguments) -> int | None:
    """The DeepSpeed ZeRO stage of the run: --deepspeed (a dict or a JSON file) or an
    `accelerate launch` configuration's."""
    config = training_args.deepspeed
    if isinstance(config, str) and Path(config).is_file():
        config = json.loads(Path(config).read_text(encoding="utf-8"))
    if isinstance(config, dict):
        return config.get("zero_optimization", {}).get("stage")
    stage = (
        os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE")
        if _env_true("ACCELERATE_USE_DEEPSPEED")
        else None
    )
    return int(stage) if stage and stage.isdigit() else None


def check_zero3_lora(model_args: ModelArguments, training_args: TrainingArguments) -> None:
    """LoRA's final merge needs the whole weights on one rank; ZeRO-3 holds them partitioned."""
    if model_args.policy.adapters and _zero_stage(training_args) == 3:
        raise TrainingSetupError(
            "--trainable_layers lora under DeepSpeed ZeRO-3: the adapters would be merged into "
            "partitioned weights no rank holds whole; use ZeRO-2 or FSDP2 (examples/accelerate/)"
        )


def check_training_output_dir(training_args: TrainingArguments) -> None:
    """An --output_dir that is empty, or may be written into (--overwrite_output_dir, or
    resuming a run there). Checked holding the folder's lock (`train`): a folder another run
    is writing is reported as busy, not as full."""
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


def parse_train_arguments(
    argv: list[str] | None = None,
) -> tuple[ModelArguments, DataArguments, SpamTrainingArguments]:
    """`hf-spam train` flags -> the three argument dataclasses (errors raise `UsageError`)."""
    parser = HfArgumentParser((ModelArguments, DataArguments, SpamTrainingArguments))
    return tuple(parser.parse_args_into_dataclasses(args=argv))  # type: ignore[return-value]
