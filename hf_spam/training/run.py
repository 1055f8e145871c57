"""Fine-tuning with `Trainer`: the book's chapter 6 recipe as arguments, one run and its outputs.

The defaults reproduce the book: GPT-2 124M weights, the balanced SMS Spam Collection split
70/10/20, the last transformer block plus the final norm and a fresh 2-class head trainable, AdamW
with lr 5e-5 and weight decay 0.1, batch size 8, 5 epochs, seed 123, evaluation each epoch.
What trains and how `Trainer` is fed live in `hf_spam.training.trainer`; the model card in `hf_spam.hub.card`;
checkpoints and the final folder in `hf_spam.training.outputs`.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import EarlyStoppingCallback, TrainerCallback, set_seed

from ..constants import SPLITS
from ..data import (
    DataArguments,
    PreparedData,
    check_tokenizer_fits,
    get_data_collator,
    get_tokenizer,
    load_tokenizer,
    prepare_data,
)
from ..errors import ModelLoadError
from ..files import output_lock
from ..hardware import cpu_has_fast_bf16
from ..metrics import make_compute_metrics
from ..model.configuration import GPTConfig
from ..model.initialization import book_head_init, book_random_init
from ..model.modeling import GPTForSequenceClassification
from ..model.weights import checkpoint_folder, load_openai_gpt2
from .arguments import (
    SpamTrainingArguments,
    check_best_metric,
    check_training_output_dir,
    parse_train_arguments,
    validate_arguments,
)
from .card import best_epoch, run_card_context
from .class_weights import resolve_class_weights
from .model_arguments import (  # re-exported: `from hf_spam.training.run import ModelArguments` works
    ModelArguments,
    TrainingSetupError,
)
from .outputs import evaluate_splits, resolve_checkpoint, save_final_outputs
from .policies import apply_trainable_layers, frozen_trunk_start, trainable_parameters
from .trainer import (
    CollatorWithExampleIds,
    SpamTrainer,
    open_trunk_cache,
    with_example_ids,
)

logger = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------------------
# Model
# ------------------------------------------------------------------------------------------------


def build_model(
    model_args: ModelArguments,
    prepared: PreparedData,
    seed: int = 123,
    output_loading_info: bool = False,
) -> GPTForSequenceClassification | tuple[GPTForSequenceClassification, dict[str, list[str]]]:
    """The classifier with the labels of the data, from GPT-2 weights, a saved folder or random.

    A new head (and, with `--init random`, the whole model) starts from `seed` as in the book;
    a head that comes with the weights (a saved folder's, or the `score.weight` of a
    `GPT2ForSequenceClassification` with the data's classes) is kept. With `output_loading_info`
    also `{"missing_keys": [...]}`, as `from_pretrained` gives it: the keys that start fresh.
    """
    labels = {
        "num_labels": prepared.num_labels,
        "id2label": dict(prepared.id2label),
        "label2id": dict(prepared.label2id),
    }
    padded_to = prepared.max_length if prepared.padding != "dynamic" else None
    overrides = {**model_args.config_overrides_for(padded_to), **labels}
    if prepared.tokenizer is not None:  # the special tokens of the ids the model will read
        overrides.update(
            {
                f"{name}_token_id": getattr(prepared.tokenizer, f"{name}_token_id")
                for name in ("bos", "eos", "pad")
            }
        )
    source = model_args.model_name_or_path
    if model_args.init == "random":
        model = GPTForSequenceClassification(
            GPTConfig.from_preset(model_args.size_preset, **overrides)
        )
        book_random_init(model, seed)
        fresh = list(model.state_dict())
    elif model_args.continues_saved_model:
        # A folder this package saved: continue from it (a new head if the labels differ).
        model, info = GPTForSequenceClassification.from_pretrained(
            source, ignore_mismatched_sizes=True, output_loading_info=True, **overrides
        )
        fresh = sorted({*info["missing_keys"], *(key for key, *_ in info["mismatched_keys"])})
    else:
        model, info = load_openai_gpt2(
            GPTForSequenceClassification, source, output_loading_info=True, **overrides
        )
        fresh = info["missing_keys"]
        if "out_head.weight" in fresh:
            book_head_init(model, seed)
    model.skip_padding_work = model_args.skip_padding_work
    return (model, {"missing_keys": fresh}) if output_loading_info else model


def load_run_tokenizer(model_args: ModelArguments, context_length: int) -> Any:
    """The tokenizer of --model_name_or_path: its own files (a Hub id's from its cached
    download), else GPT-2's from the BPE files bundled with the package, which is also the
    tokenizer of `--init random`."""
    if model_args.init == "random":
        return get_tokenizer(context_length)
    try:
        folder = checkpoint_folder(model_args.model_name_or_path)
    except (ModelLoadError, FileNotFoundError):
        folder = None  # building the model reports it, after the data's own checks
    return load_tokenizer(folder, context_length)


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
    #: The trunk feature store the run read (None: off), and how long opening or building it took.
    trunk_store: Any = None
    trunk_seconds: float = 0.0


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

    The main process holds --output_dir's lock throughout: a second run into the same folder is
    refused at once, naming this one's process id.
    """
    validate_arguments(model_args, data_args, training_args)
    main = training_args.process_index == 0
    with output_lock(training_args.output_dir, "--output_dir") if main else nullcontext():
        if main:  # under the lock: a run that just finished may have filled the folder
            check_training_output_dir(training_args)
        return _train(model_args, data_args, training_args, callbacks, prepared)


def _train(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: SpamTrainingArguments,
    callbacks: list[TrainerCallback] | None,
    prepared: PreparedData | None,
) -> TrainingResult:
    output_dir = Path(training_args.output_dir)
    logger.info(
        "Process %d of %d on %s",
        training_args.process_index,
        training_args.world_size,
        training_args.device,
    )
    if training_args.bf16 and training_args.use_cpu and not cpu_has_fast_bf16():
        logger.warning(
            "--bf16 on a CPU without AMX: bf16 is often slower than fp32 here (converted around "
            "every op, or emulated without AVX512-BF16); scripts/benchmark.py measures both"
        )
    resume = resolve_checkpoint(training_args.resume_from_checkpoint, output_dir)
    if prepared is None:
        context_length = model_args.context_length
        with training_args.main_process_first(desc="data preparation"):
            tokenizer = load_run_tokenizer(model_args, context_length)
            prepared = prepare_data(data_args, context_length, tokenizer)
    labels = [prepared.id2label[i] for i in range(prepared.num_labels)]
    check_best_metric(training_args, labels)
    class_weights = resolve_class_weights(
        training_args.class_weights,
        prepared.dataset["train"]["label"],
        prepared.num_labels,
        model_args.overrides.get("problem_type"),
    )
    if training_args.early_stopping_patience is not None:
        stopping = EarlyStoppingCallback(
            training_args.early_stopping_patience, training_args.early_stopping_threshold
        )
        callbacks = [*(callbacks or []), stopping]
    set_seed(training_args.seed)
    model, loading = build_model(model_args, prepared, training_args.seed, output_loading_info=True)
    tokenizer = prepared.tokenizer
    if tokenizer is None:  # data prepared by the caller with GPT-2's tokenizer
        tokenizer = get_tokenizer(model.config.context_length)
    check_tokenizer_fits(tokenizer, model.config.vocab_size, model_args.model_name_or_path)
    start_block = frozen_trunk_start(model, model_args)
    fresh_head = "out_head.weight" in loading["missing_keys"]
    model = apply_trainable_layers(model, model_args, training_args.seed, fresh_head)
    main = training_args.process_index == 0
    n_trainable, n_total = _announce_parameters(model, model_args.trainable_layers, main)
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
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        train_eval_dataset=dataset["train"] if model_args.eval_on_train else None,
        callbacks=callbacks,
        class_weights=class_weights,
    )

    if start_block is not None:  # after Trainer placed the model: the trunk runs there
        opened = time.perf_counter()
        trainer.trunk_cache = open_trunk_cache(trainer, dataset, start_block, model_args)
        trunk_seconds = time.perf_counter() - opened
    started = time.perf_counter()
    train_output = trainer.train(resume_from_checkpoint=resume)
    train_seconds = time.perf_counter() - started

    # Trainer's run metrics; its running average of the training loss is renamed so that
    # `train_loss` is, like `test_loss`, the loss of the final model on that split.
    metrics: dict[str, Any] = dict(train_output.metrics)
    metrics["train_running_loss"] = metrics.pop("train_loss", None)
    trainer.remove_callback(EarlyStoppingCallback)  # the final evaluations are not its business
    split_scores, confusion = evaluate_splits(trainer, dataset, compute_metrics)
    metrics.update(split_scores)
    metrics["trainable_parameters"] = n_trainable
    metrics["total_parameters"] = n_total
    metrics["world_size"] = training_args.world_size
    if class_weights is not None:
        metrics["class_weights"] = class_weights
    if training_args.early_stopping_patience is not None:
        metrics["best_epoch"] = best_epoch(trainer.state)

    card = run_card_context(model_args, data_args, training_args, prepared, metrics, confusion)
    examples = demo_examples(prepared.dataset["test"], prepared.id2label)
    files = save_final_outputs(
        trainer,
        card,
        metrics,
        confusion,
        examples,
        adapters=model_args.policy.adapters,
        adapter_base=model_args.model_name_or_path if model_args.writes_adapter else None,
    )
    if push and trainer.is_world_process_zero():
        from ..hub.sharing import format_push_result, push_model_folder

        pushed = push_model_folder(
            output_dir,
            training_args.hub_model_id,
            private=bool(training_args.hub_private_repo),
            token=training_args.hub_token,
        )
        logger.info(format_push_result(pushed))
    return TrainingResult(
        output_dir,
        metrics,
        n_trainable,
        n_total,
        train_seconds,
        files,
        trunk_store=trainer.trunk_cache,
        trunk_seconds=trunk_seconds if start_block is not None else 0.0,
    )


def demo_examples(test: Any, id2label: dict[int, str], per_class: int = 3) -> list[dict[str, str]]:
    """The first `per_class` test texts of each class, for `examples.json` (demo, Space); none
    when the data came tokenized, without its texts."""
    if "text" not in test.column_names:
        return []
    picked: dict[int, list[str]] = {label: [] for label in id2label}
    for text, label in zip(test["text"], test["label"], strict=True):
        if len(picked[label]) < per_class:
            picked[label].append(text)
    return [{"text": t, "label": id2label[label]} for label, texts in picked.items() for t in texts]


def format_summary(result: TrainingResult) -> str:
    """The short table printed at the end of a run."""
    from ..reporting import format_table

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


__all__ = [
    "ModelArguments",
    "SpamTrainingArguments",
    "TrainingResult",
    "TrainingSetupError",
    "build_model",
    "format_summary",
    "parse_train_arguments",
    "train",
]
