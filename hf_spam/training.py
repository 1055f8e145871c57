"""Fine-tuning with `Trainer`: the book's chapter 6 recipe as arguments, policies and outputs.

The defaults reproduce the book: GPT-2 124M weights, the balanced SMS Spam Collection split
70/10/20, the last transformer block plus the final norm and a fresh 2-class head trainable, AdamW
with lr 5e-5 and weight decay 0.1, batch size 8, 5 epochs, seed 123, evaluation each epoch.
What differs is how fast it gets there (see `FrozenTrunkCache`) and what it leaves behind: a
folder that `pipeline()` loads, metrics, the book's plots and a model card.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from .configuration import GPT2_PRESETS, GPTConfig
from .constants import SPLITS, TIMING_SUFFIXES, split_metrics
from .data import DataArguments, PreparedData, get_data_collator, get_tokenizer, prepare_data
from .errors import UsageError
from .files import check_output_dir
from .hardware import cpu_has_native_bf16
from .metrics import make_compute_metrics
from .modeling import GPTForSequenceClassification

logger = logging.getLogger(__name__)

TRAINABLE_POLICIES = ("head", "last_block", "last_two_blocks", "all", "lora")
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
            "help": "What trains: 'head' (the new output layer), 'last_block' (+ the last "
            "transformer block and the final norm: the book), 'last_two_blocks', 'all', or 'lora' "
            "(low-rank adapters + head; needs peft).",
            "choices": list(TRAINABLE_POLICIES),
        },
    )
    lora_rank: int = field(default=16, metadata={"help": "LoRA rank r."})
    lora_alpha: float = field(default=16.0, metadata={"help": "LoRA scaling alpha."})
    lora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the LoRA path."})
    lora_target_modules: str = field(
        default="W_query,W_key,W_value,out_proj,layers.0,layers.2",
        metadata={"help": "Comma-separated module names that get LoRA adapters."},
    )
    frozen_trunk_cache: bool = field(
        default=True,
        metadata={
            "help": "Compute the frozen blocks' output once per example and reuse it every epoch "
            "and evaluation (exact; switched off automatically when the frozen part has dropout)."
        },
    )
    eval_on_train: bool = field(
        default=True,
        metadata={"help": "Also evaluate on the training split each epoch (the book's plots)."},
    )


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

    def __post_init__(self) -> None:
        # On a machine without an accelerator, say "CPU" for the user: accelerate then sets up a
        # gloo process group under torchrun (otherwise each process would silently train alone)
        # and transformers accepts --bf16 (CPU autocast) instead of refusing it.
        if not torch.accelerator.is_available():
            self.use_cpu = True
        super().__post_init__()

    remove_unused_columns: bool = field(
        default=False,
        metadata={
            "help": "Kept False: the collator picks its columns (example ids for the cache)."
        },
    )


# ------------------------------------------------------------------------------------------------
# Checks before any work
# ------------------------------------------------------------------------------------------------


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


def expected_context_length(model_args: ModelArguments) -> int:
    """The model's context length, known without downloading any weights."""
    overrides = parse_config_overrides(model_args.config_overrides)
    if "context_length" in overrides:
        return overrides["context_length"]
    config_file = Path(model_args.model_name_or_path) / "config.json"
    if config_file.is_file():
        raw = json.loads(config_file.read_text(encoding="utf-8"))
        return int(raw.get("context_length", raw.get("n_positions", 1024)))
    return GPTConfig().context_length


def validate_arguments(
    model_args: ModelArguments, data_args: DataArguments, training_args: SpamTrainingArguments
) -> None:
    """Fail before any work with a message that says what to change."""
    if model_args.trainable_layers not in TRAINABLE_POLICIES:
        raise TrainingSetupError(
            f"--trainable_layers {model_args.trainable_layers!r} is unknown; choose one of "
            f"{', '.join(TRAINABLE_POLICIES)}"
        )
    if model_args.init not in INIT_CHOICES:
        raise TrainingSetupError(f"--init must be one of {INIT_CHOICES}, got {model_args.init!r}")
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

        if not training_args.hub_model_id:
            raise TrainingSetupError("--push_to_hub needs --hub_model_id USER/NAME")
        check_repo_id(training_args.hub_model_id)
        require_token(training_args.hub_token)
    resuming = bool(training_args.resume_from_checkpoint)
    check_output_dir(training_args.output_dir, training_args.overwrite_output_dir or resuming)


# ------------------------------------------------------------------------------------------------
# Model and trainable layers
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
        config = GPTConfig.from_preset(_size_preset(source), **overrides)
        return GPTForSequenceClassification(config)
    config_file = Path(source) / "config.json"
    if config_file.is_file() and json.loads(config_file.read_text()).get("model_type") == (
        GPTConfig.model_type
    ):
        # A folder this package saved: continue from it (a new head if the labels differ).
        return GPTForSequenceClassification.from_pretrained(
            source, ignore_mismatched_sizes=True, **overrides
        )
    return GPTForSequenceClassification.from_openai_gpt2(source, **overrides)


def first_trainable_block(model: GPTForSequenceClassification, policy: str) -> int | None:
    """Index of the first block that trains, or None when the embeddings train too."""
    n_layers = model.config.n_layers
    return {"head": n_layers, "last_block": n_layers - 1, "last_two_blocks": n_layers - 2}.get(
        policy
    )


def apply_trainable_layers(model: GPTForSequenceClassification, model_args: ModelArguments):
    """Freeze everything but what `--trainable_layers` names; returns the model to train."""
    policy = model_args.trainable_layers
    if policy == "lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=model_args.lora_rank,
            lora_alpha=model_args.lora_alpha,
            lora_dropout=model_args.lora_dropout,
            target_modules=[m.strip() for m in model_args.lora_target_modules.split(",")],
            modules_to_save=["out_head"],
        )
        return get_peft_model(model, lora)
    start = first_trainable_block(model, policy)
    for name, param in model.named_parameters():
        if start is None:
            param.requires_grad = True
        elif name.startswith("out_head."):
            param.requires_grad = True
        elif name.startswith("gpt.final_norm."):
            param.requires_grad = policy != "head"
        elif name.startswith("gpt.trf_blocks."):
            param.requires_grad = int(name.split(".")[2]) >= start
        else:
            param.requires_grad = False
    return model


def trainable_parameters(model: torch.nn.Module) -> tuple[int, int, list[str]]:
    """(trainable count, total count, names of trainable tensors)."""
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters()), names


# ------------------------------------------------------------------------------------------------
# Frozen-trunk cache
# ------------------------------------------------------------------------------------------------


class FrozenTrunkCache:
    """Hidden states entering the first trainable block, computed once per example.

    When only the top of the network trains, the frozen blocks below compute the same thing for
    an example in every epoch and every evaluation; the book's loop recomputes it each time.
    Here each example's states (real tokens only) are kept after their first computation and
    fed back through `block_inputs=`. Exact as long as the frozen part has no randomness, which
    `frozen_trunk_start` checks.
    """

    def __init__(self, start_block: int):
        self.start_block = start_block
        self.states: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.states)

    @torch.no_grad()
    def block_inputs(
        self,
        model: GPTForSequenceClassification,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        example_ids: torch.Tensor,
    ) -> torch.Tensor:
        ids = example_ids.tolist()
        lengths = attention_mask.sum(-1).tolist()
        misses = [row for row, key in enumerate(ids) if key not in self.states]
        if misses:
            rows = torch.tensor(misses, device=input_ids.device)
            width = max(lengths[row] for row in misses)
            hidden = model.gpt(
                input_ids=input_ids[rows, :width],
                attention_mask=attention_mask[rows, :width],
                stop_block=self.start_block,
            ).last_hidden_state
            for i, row in enumerate(misses):
                self.states[ids[row]] = hidden[i, : lengths[row]].clone()
        hidden_dtype = self.states[ids[0]].dtype
        out = torch.zeros(
            (len(ids), attention_mask.shape[1], model.config.emb_dim),
            dtype=hidden_dtype,
            device=input_ids.device,
        )
        for row, key in enumerate(ids):
            out[row, : lengths[row]] = self.states[key]
        return out


def frozen_trunk_start(
    model: GPTForSequenceClassification, model_args: ModelArguments
) -> int | None:
    """Where the cache can start, or None (with a log line saying why) when it must stay off."""
    if not model_args.frozen_trunk_cache:
        return None
    start = first_trainable_block(model, model_args.trainable_layers)
    if start is None:
        logger.info(
            "Frozen-trunk cache off: --trainable_layers %s trains the embeddings",
            model_args.trainable_layers,
        )
        return None
    if model.config.drop_rate > 0:
        logger.warning(
            "Frozen-trunk cache off: drop_rate=%s makes the frozen blocks random in training",
            model.config.drop_rate,
        )
        return None
    return start


class SpamTrainer(Trainer):
    """`Trainer` that feeds cached frozen-trunk states instead of token ids when it can."""

    def __init__(self, *args: Any, trunk_cache: FrozenTrunkCache | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.trunk_cache = trunk_cache

    def _use_cache(self, model: torch.nn.Module, inputs: Mapping[str, Any]) -> dict[str, Any]:
        inputs = dict(inputs)
        example_ids = inputs.pop("example_id", None)
        if self.trunk_cache is None or example_ids is None:
            return inputs
        unwrapped = self.accelerator.unwrap_model(model)
        inputs["block_inputs"] = self.trunk_cache.block_inputs(
            unwrapped, inputs.pop("input_ids"), inputs["attention_mask"], example_ids
        )
        inputs["start_block"] = self.trunk_cache.start_block
        return inputs

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        return super().compute_loss(
            model, self._use_cache(model, inputs), return_outputs, num_items_in_batch
        )

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        return super().prediction_step(
            model, self._use_cache(model, inputs), prediction_loss_only, ignore_keys
        )


@dataclass
class CollatorWithExampleIds:
    """The data collator, plus each example's `example_id` (the cache key)."""

    collator: Any

    def __call__(self, features: list[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        batch = self.collator(features)
        if "example_id" in features[0]:
            batch["example_id"] = torch.tensor([int(f["example_id"]) for f in features])
        return batch


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


@dataclass
class RunRecord:
    """Everything a finished run is described by, for its output files and model card."""

    model_args: ModelArguments
    data_args: DataArguments
    training_args: SpamTrainingArguments
    prepared: PreparedData
    metrics: dict[str, Any]
    confusion: dict[str, list[list[int]]]


def with_example_ids(prepared: PreparedData) -> Any:
    """The tokenized splits with a unique `example_id` per row across splits (cache keys)."""
    splits = {}
    offset = 0
    for split, dataset in prepared.dataset.items():
        ids = range(offset, offset + len(dataset))
        splits[split] = dataset.add_column("example_id", list(ids))
        offset += len(dataset)
    return type(prepared.dataset)(splits)


def _book_log_history(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Trainer's per-dataset eval keys renamed for the plots (`eval_validation_x` -> `eval_x`)."""
    renamed = []
    for entry in log_history:
        out = {}
        for key, value in entry.items():
            if key.startswith("eval_validation_"):
                out["eval_" + key.removeprefix("eval_validation_")] = value
            elif key.startswith("eval_train_"):
                out["train_" + key.removeprefix("eval_train_")] = value
            else:
                out[key] = value
        renamed.append(out)
    return renamed


def train(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: SpamTrainingArguments,
    callbacks: list[TrainerCallback] | None = None,
) -> TrainingResult:
    """Run the whole job: check, prepare data, build and train the model, write the outputs.

    `callbacks` are added to the `Trainer` (early stopping, custom logging, ...).
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
    prepared = prepare_data(data_args, context_length=expected_context_length(model_args))
    set_seed(training_args.seed)  # before the model: its new head (or all of it) starts random
    model = build_model(model_args, prepared)
    start_block = frozen_trunk_start(model, model_args)
    model = apply_trainable_layers(model, model_args)
    n_trainable, n_total, names = trainable_parameters(model)
    logger.info(
        "Trainable parameters: %s of %s (%.2f%%), policy %s: %s",
        f"{n_trainable:,}",
        f"{n_total:,}",
        100 * n_trainable / n_total,
        model_args.trainable_layers,
        ", ".join(names) if len(names) <= 12 else f"{', '.join(names[:12])}, ...",
    )
    trunk_cache = FrozenTrunkCache(start_block) if start_block is not None else None
    if trunk_cache is not None:
        logger.info("Frozen-trunk cache on: blocks below %d run once per example", start_block)

    # hf_spam pushes the finished folder itself (merged weights, code, card); Trainer's own push
    # would upload checkpoints and overwrite the card.
    push, training_args.push_to_hub = training_args.push_to_hub, False
    dataset = with_example_ids(prepared)
    eval_sets = {"validation": dataset["validation"]}
    if model_args.eval_on_train:
        eval_sets["train"] = dataset["train"]
    compute_metrics = make_compute_metrics(prepared.id2label)
    tokenizer = get_tokenizer(model.config.context_length)
    trainer = SpamTrainer(
        model=model,
        args=training_args,
        train_dataset=dataset["train"],
        eval_dataset=eval_sets,
        data_collator=CollatorWithExampleIds(get_data_collator(prepared)),
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        trunk_cache=trunk_cache,
        callbacks=callbacks,
    )

    resume = training_args.resume_from_checkpoint
    if resume in ("true", "True", "last"):
        resume = get_last_checkpoint(training_args.output_dir)
        if resume is None:
            raise TrainingSetupError(f"--resume_from_checkpoint: no checkpoint in {output_dir}")
    started = time.perf_counter()
    train_output = trainer.train(resume_from_checkpoint=resume or None)
    train_seconds = time.perf_counter() - started

    # Trainer's run metrics; its running average of the training loss is renamed so that
    # `train_loss` is, like `test_loss`, the loss of the final model on that split.
    metrics: dict[str, Any] = dict(train_output.metrics)
    metrics["train_running_loss"] = metrics.pop("train_loss", None)
    confusion: dict[str, list[list[int]]] = {}
    for split in SPLITS:
        evaluated = trainer.evaluate(dataset[split], metric_key_prefix=split)
        metrics.update({k: v for k, v in evaluated.items() if not k.endswith(TIMING_SUFFIXES)})
        metrics[f"{split}_samples"] = len(dataset[split])
        confusion[split] = compute_metrics.confusion_matrix
    metrics["trainable_parameters"] = n_trainable
    metrics["total_parameters"] = n_total
    metrics["world_size"] = training_args.world_size

    files: list[Path] = []
    if trainer.is_world_process_zero():
        record = RunRecord(model_args, data_args, training_args, prepared, metrics, confusion)
        files = save_outputs(trainer, record)
        if push:
            from .sharing import format_push_result, push_model_folder

            pushed = push_model_folder(
                output_dir,
                training_args.hub_model_id,
                private=bool(training_args.hub_private_repo),
                token=training_args.hub_token,
            )
            logger.info(format_push_result(pushed))
    return TrainingResult(output_dir, metrics, n_trainable, n_total, train_seconds, files)


def save_outputs(trainer: SpamTrainer, record: RunRecord) -> list[Path]:
    """Model, tokenizer, metrics, the book's plots and the model card in `output_dir`."""
    from .files import write_json
    from .reporting import (
        CARD_CONTEXT_FILE,
        plot_confusion_matrix,
        plot_training_curves,
        render_model_card,
    )

    training_args, prepared, confusion = record.training_args, record.prepared, record.confusion
    output_dir = Path(training_args.output_dir)
    model = trainer.model
    if record.model_args.trainable_layers == "lora":
        model = model.merge_and_unload()  # a plain model: the folder needs no peft
    model.save_pretrained(output_dir)
    trainer.processing_class.save_pretrained(output_dir)
    trainer.save_metrics("all", {**record.metrics, "confusion_matrix": confusion}, combined=False)
    trainer.save_state()
    examples_per_step = (
        training_args.per_device_train_batch_size
        * training_args.gradient_accumulation_steps
        * training_args.world_size
    )
    files = plot_training_curves(
        _book_log_history(trainer.state.log_history),
        output_dir,
        examples_per_step=examples_per_step,
    )
    labels = [prepared.id2label[i] for i in range(prepared.num_labels)]
    files.append(
        plot_confusion_matrix(
            confusion["test"], labels, output_dir / "confusion-matrix.png", title="Test split"
        )
    )
    context = model_card_context(record)
    # Kept so the card can be rendered again, e.g. with the Hub repo id when pushing.
    files.append(write_json(output_dir / CARD_CONTEXT_FILE, context))
    files.append(render_model_card(None, output_dir / "README.md", context=context))
    return files


TRAINABLE_DESCRIPTIONS = {
    "head": "the new classification head only",
    "last_block": "the last transformer block, the final norm and the new head (the book)",
    "last_two_blocks": "the last two transformer blocks, the final norm and the new head",
    "all": "all parameters",
    "lora": "LoRA adapters (merged into the weights) and the new head",
}


def model_card_context(record: RunRecord) -> dict[str, Any]:
    """The values `model_card.md` is rendered with (see the key list at its top)."""
    from .data import SMS_SPAM_HUB_ID

    model_args, data_args, training_args = record.model_args, record.data_args, record.training_args
    prepared, metrics, confusion = record.prepared, record.metrics, record.confusion
    report = prepared.report
    sms = data_args.dataset in ("sms_spam", SMS_SPAM_HUB_ID) or Path(data_args.dataset).name == (
        "SMSSpamCollection"
    )
    # No local paths on a public card: a custom data set is named by its file name.
    source = "SMS Spam Collection (UCI)" if sms else Path(report.source).name
    base = model_args.model_name_or_path if model_args.init == "pretrained" else None
    return {
        "repo_id": training_args.hub_model_id or None,
        "base_model": base if base and not Path(base).exists() else None,
        "model_size": _millions(metrics.get("total_parameters")),
        "labels": dict(prepared.id2label),
        "dataset_id": SMS_SPAM_HUB_ID if sms else None,
        "dataset_name": source,
        "data_description": (
            f"{source}; {'balanced by undersampling, ' if report.balanced else ''}"
            f"split {data_args.split_fractions} (seed {data_args.split_seed}), "
            f"{report.duplicates_dropped} duplicate texts dropped, padding {report.padding}"
        ),
        "split_sizes": {split: len(prepared.dataset[split]) for split in SPLITS},
        "train_test_overlap": sum(report.cross_split_duplicates.values()),
        "max_length": prepared.max_length,
        "trainable_layers": TRAINABLE_DESCRIPTIONS[model_args.trainable_layers],
        "trainable_parameters": metrics.get("trainable_parameters"),
        "total_parameters": metrics.get("total_parameters"),
        "hyperparameters": {
            "learning_rate": training_args.learning_rate,
            "weight_decay": training_args.weight_decay,
            "lr_scheduler": str(training_args.lr_scheduler_type),
            "gradient_clipping": training_args.max_grad_norm or "none",
            "batch_size": training_args.per_device_train_batch_size * training_args.world_size,
            "epochs": training_args.num_train_epochs,
            "optimizer": str(training_args.optim),
            "precision": "bf16" if training_args.bf16 else "fp16" if training_args.fp16 else "fp32",
        },
        "seed": training_args.seed,
        "training_time": f"{metrics.get('train_runtime', 0):.0f} s",
        "results": {split: split_metrics(metrics, split) for split in SPLITS},
        "confusion_matrix": confusion.get("test"),
        "confusion_matrix_split": "test",
        "plots": ["loss-plot.png", "accuracy-plot.png", "confusion-matrix.png"],
    }


def _millions(count: int | None) -> str | None:
    """124439808 -> '124M', 1635810 -> '1.6M'."""
    if not count:
        return None
    return f"{count / 1e6:.0f}M" if count >= 1e7 else f"{count / 1e6:.1f}M"


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
