"""Fine-tuning with `Trainer`: the book's chapter 6 recipe as arguments, one run and its outputs.

The defaults reproduce the book: GPT-2 124M weights, the balanced SMS Spam Collection split
70/10/20, the last transformer block plus the final norm and a fresh 2-class head trainable, AdamW
with lr 5e-5 and weight decay 0.1, batch size 8, 5 epochs, seed 123, evaluation each epoch.
What trains and how `Trainer` is fed live in `hf_spam.trainer`; the model card in `hf_spam.card`;
checkpoints and the final folder in `hf_spam.outputs`.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback, TrainingArguments, set_seed

from .configuration import GPT2_PRESETS, GPTConfig
from .constants import CONFIG_NAME, SPLITS
from .data import DataArguments, PreparedData, get_data_collator, get_tokenizer, prepare_data
from .errors import UsageError
from .files import check_output_dir, read_config
from .hardware import cpu_has_native_bf16
from .metrics import make_compute_metrics
from .modeling import GPTForSequenceClassification
from .outputs import (
    RESUME_LAST,
    checkpoint_problems,
    evaluate_splits,
    resolve_checkpoint,
    save_final_outputs,
)
from .trainer import (
    BOOK_LORA_TARGETS,
    LORA_ALPHA_CONVENTIONS,
    TRAINABLE_POLICIES,
    CollatorWithExampleIds,
    FrozenTrunkCache,
    SpamTrainer,
    apply_trainable_layers,
    frozen_trunk_start,
    trainable_parameters,
    with_example_ids,
)

logger = logging.getLogger(__name__)

INIT_CHOICES = ("pretrained", "random")


class TrainingSetupError(UsageError):
    """Arguments that cannot work together, found before any data or weights are loaded."""


@dataclass
class ModelArguments:
    """Which model starts the run and which of its parts train."""

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
            "help": "'pretrained' loads the weights; 'random' starts from random weights of the same "
            "size (the book's comparison; no download).",
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
    lora_rank: int = field(default=16, metadata={"help": "LoRA rank r (the book's row 11: 16)."})
    lora_alpha: float = field(
        default=16.0,
        metadata={"help": "LoRA alpha, read as --lora_alpha_convention says (book's row 11: 16)."},
    )
    lora_alpha_convention: str = field(
        default="book",
        metadata={
            "help": "'book': the update is alpha * x @ A @ B, as the book's LoRALayer computes it "
            "(its A initialised as the book does), so the book's --lora_rank/--lora_alpha rows mean "
            "what they mean in the book; 'peft': scaled by alpha / rank, as peft and most LoRA "
            "papers read lora_alpha. Default 'book': these flags carry the book's names.",
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
    frozen_trunk_cache: bool = field(
        default=True,
        metadata={
            "help": "Compute the frozen blocks' output once per example and reuse it every epoch "
            "and evaluation (exact; switched off automatically when the frozen part has dropout)."
        },
    )
    skip_padding_work: bool = field(
        default=True,
        metadata={
            "help": "Run the top block only at each text's last token and group texts by length "
            "(same results, less work); false runs every position (for benchmarks)."
        },
    )
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

    def __post_init__(self) -> None:
        check_model_arguments(self)


@dataclass
class SpamTrainingArguments(TrainingArguments):
    """`TrainingArguments` with the book's defaults; every flag of transformers still works."""

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
            "help": "'group_by_length' batches texts of similar length (less padding, same "
            "results); 'random' as the book; 'sequential'."
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
    shape = expected_shape(model_args)
    if shape["n_heads"] < 1 or shape["emb_dim"] % shape["n_heads"]:
        raise TrainingSetupError(
            f"--config_overrides: n_heads ({shape['n_heads']}) must divide emb_dim "
            f"({shape['emb_dim']})"
        )


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
    context_length = expected_context_length(model_args)
    if data_args.max_length is not None and data_args.max_length > context_length:
        raise TrainingSetupError(
            f"--max_length {data_args.max_length} is longer than the model's context length "
            f"({context_length}); lower --max_length or raise context_length"
        )
    if training_args.push_to_hub:
        from .sharing import check_repo_id, require_token

        token = require_token(training_args.hub_token)
        training_args.hub_model_id = hub_model_id(training_args, token)
        check_repo_id(training_args.hub_model_id)
    resuming = bool(training_args.resume_from_checkpoint)
    check_output_dir(training_args.output_dir, training_args.overwrite_output_dir or resuming)


def hub_model_id(training_args: TrainingArguments, token: str) -> str:
    """--hub_model_id, or as `Trainer` derives it: the output folder's name in the namespace of
    the token's user."""
    repo_id = training_args.hub_model_id or Path(training_args.output_dir).absolute().name
    if "/" in repo_id:
        return repo_id
    import huggingface_hub

    from .errors import HubError

    try:
        user = huggingface_hub.whoami(token=token)["name"]
    except Exception as err:  # offline, a revoked token, ...: one line, not the HTTP trace
        raise HubError(
            f"--push_to_hub without --hub_model_id: cannot look up the token's user name "
            f"({type(err).__name__}); pass --hub_model_id USER/NAME"
        ) from err
    return f"{user}/{repo_id}"


# ------------------------------------------------------------------------------------------------
# Model
# ------------------------------------------------------------------------------------------------


def build_model(model_args: ModelArguments, prepared: PreparedData) -> GPTForSequenceClassification:
    """The classifier with the labels of the data, from GPT-2 weights, a saved folder or random."""
    labels = {
        "num_labels": prepared.num_labels,
        "id2label": dict(prepared.id2label),
        "label2id": dict(prepared.label2id),
    }
    overrides = {**parse_config_overrides(model_args.config_overrides), **labels}
    source = model_args.model_name_or_path
    if model_args.init == "random":
        model = GPTForSequenceClassification(
            GPTConfig.from_preset(_size_preset(source), **overrides)
        )
    elif (_saved_config(model_args) or {}).get("model_type") == GPTConfig.model_type:
        # A folder this package saved: continue from it (a new head if the labels differ).
        model = GPTForSequenceClassification.from_pretrained(
            source, ignore_mismatched_sizes=True, **overrides
        )
    else:
        model = GPTForSequenceClassification.from_openai_gpt2(source, **overrides)
    model.skip_padding_work = model_args.skip_padding_work
    return model


# ------------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------------


@dataclass
class TrainingResult:
    """What a run produced: final metrics per split and where the files are."""

    output_dir: Path
    metrics: dict[str, Any]
    trainable_parameters: int
    total_parameters: int
    train_seconds: float
    files: list[Path]


def _announce_parameters(model: torch.nn.Module, policy: str, main: bool) -> tuple[int, int]:
    """Print the trainable-parameter count README promises (scripts log at WARNING only)."""
    n_trainable, n_total, names = trainable_parameters(model)
    listed = ", ".join(names) if len(names) <= 12 else f"{', '.join(names[:12])}, ..."
    if main:
        print(
            f"Trainable parameters: {n_trainable:,} of {n_total:,} "
            f"({100 * n_trainable / n_total:.2f}%), --trainable_layers {policy}",
            flush=True,
        )
    logger.info("Trainable tensors: %s", listed)
    return n_trainable, n_total


def train(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: SpamTrainingArguments,
    callbacks: list[TrainerCallback] | None = None,
    prepared: PreparedData | None = None,
) -> TrainingResult:
    """Run the whole job: check, prepare data, build and train the model, write the outputs.

    `callbacks` are added to the `Trainer` (early stopping, custom logging, ...). `prepared`
    replaces the data preparation of `data_args` (e.g. a subset, for benchmarks).
    """
    validate_arguments(model_args, data_args, training_args)
    output_dir = Path(training_args.output_dir)
    logger.info(
        "Process %d of %d on %s",
        training_args.process_index,
        training_args.world_size,
        training_args.device,
    )
    if training_args.bf16 and training_args.use_cpu and not cpu_has_native_bf16():
        logger.warning(
            "--bf16 on a CPU without bf16 hardware (AVX512-BF16 or AMX): bf16 is emulated and "
            "usually several times slower than fp32 here; drop --bf16 on this machine"
        )
    resume = resolve_checkpoint(training_args.resume_from_checkpoint, output_dir)
    if prepared is None:
        with training_args.main_process_first(desc="data preparation"):
            prepared = prepare_data(data_args, context_length=expected_context_length(model_args))
    set_seed(training_args.seed)  # before the model: its new head (or all of it) starts random
    model = build_model(model_args, prepared)
    start_block = frozen_trunk_start(model, model_args)
    model = apply_trainable_layers(model, model_args)
    main = training_args.process_index == 0
    n_trainable, n_total = _announce_parameters(model, model_args.trainable_layers, main)
    trunk_cache = FrozenTrunkCache(start_block) if start_block is not None else None
    if trunk_cache is not None:
        logger.info("Frozen-trunk cache on: blocks below %d run once per example", start_block)

    # hf_spam pushes the finished folder itself (merged weights, code, card); Trainer's own push
    # would upload checkpoints and overwrite the card.
    push, training_args.push_to_hub = training_args.push_to_hub, False
    dataset = with_example_ids(prepared.dataset)
    compute_metrics = make_compute_metrics(prepared.id2label)
    trainer = SpamTrainer(
        model=model,
        args=training_args,
        train_dataset=dataset["train"],
        eval_dataset=dataset["validation"],
        data_collator=CollatorWithExampleIds(get_data_collator(prepared)),
        processing_class=get_tokenizer(model.config.context_length),
        compute_metrics=compute_metrics,
        trunk_cache=trunk_cache,
        train_eval_dataset=dataset["train"] if model_args.eval_on_train else None,
        callbacks=callbacks,
    )

    started = time.perf_counter()
    train_output = trainer.train(resume_from_checkpoint=resume)
    train_seconds = time.perf_counter() - started

    # Trainer's run metrics; its running average of the training loss is renamed so that
    # `train_loss` is, like `test_loss`, the loss of the final model on that split.
    metrics: dict[str, Any] = dict(train_output.metrics)
    metrics["train_running_loss"] = metrics.pop("train_loss", None)
    split_scores, confusion = evaluate_splits(trainer, dataset, compute_metrics)
    metrics.update(split_scores)
    metrics["trainable_parameters"] = n_trainable
    metrics["total_parameters"] = n_total
    metrics["world_size"] = training_args.world_size

    if model_args.trainable_layers == "lora":
        trainer.model = trainer.model.merge_and_unload()  # a plain model: the folder needs no peft
    from .card import CardContext

    card = CardContext.from_run(model_args, data_args, training_args, prepared, metrics, confusion)
    files = save_final_outputs(trainer, card, metrics, confusion)
    if push and trainer.is_world_process_zero():
        from .sharing import format_push_result, push_model_folder

        pushed = push_model_folder(
            output_dir,
            training_args.hub_model_id,
            private=bool(training_args.hub_private_repo),
            token=training_args.hub_token,
        )
        logger.info(format_push_result(pushed))
    return TrainingResult(output_dir, metrics, n_trainable, n_total, train_seconds, files)


def format_summary(result: TrainingResult) -> str:
    """The short table printed at the end of a run."""
    from .reporting import format_table

    m = result.metrics
    rows = [
        {
            "split": split,
            "examples": m.get(f"{split}_samples", ""),
            "loss": m.get(f"{split}_loss"),
            "accuracy": m.get(f"{split}_accuracy"),
            "f1_macro": m.get(f"{split}_f1_macro"),
        }
        for split in SPLITS
    ]
    head = (
        f"Trained {result.trainable_parameters:,} of {result.total_parameters:,} parameters in "
        f"{m.get('train_runtime', result.train_seconds):.1f} s "
        f"({m.get('train_samples_per_second', 0):.1f} examples/s). Outputs: {result.output_dir}"
    )
    return head + "\n" + format_table(rows)
