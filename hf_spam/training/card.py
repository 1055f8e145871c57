"""The model card of a finished training run: its arguments, data and scores as a `CardContext`.

The card itself (its fields, how a folder's card is read back and rendered) is `hf_spam.hub`'s;
this module is the one place that knows which run argument fills which field.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..constants import SMS_SPAM_HUB_ID, SPLITS, split_metrics
from ..hub.card import CardContext, millions


def best_epoch(state: Any) -> float | None:
    """The epoch at which the checkpoint `load_best_model_at_end` kept was saved (None: none)."""
    step = getattr(state, "best_global_step", None)
    if not step and state.best_model_checkpoint:
        step = int(str(state.best_model_checkpoint).rstrip("/").rsplit("-", 1)[-1])
    epochs = [entry["epoch"] for entry in state.log_history if entry.get("step") == step]
    return float(epochs[0]) if step and epochs else None


def _training_choices(training_args: Any, metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The class weights and early stopping of a run, as hyperparameters (none when unused)."""
    choices: dict[str, Any] = {}
    if training_args.class_weights is not None:
        weights = ", ".join(f"{w:.4g}" for w in metrics.get("class_weights") or [])
        choices["class_weights"] = f"{training_args.class_weights} ({weights})"
    if training_args.early_stopping_patience is not None:
        choices["early_stopping"] = (
            f"patience {training_args.early_stopping_patience}, threshold "
            f"{training_args.early_stopping_threshold:g} on {training_args.metric_for_best_model}"
        )
    return choices


def run_precision(training_args: Any) -> str:
    """The precision the run trained and evaluated in: mixed precision (`--bf16` / `--fp16`,
    the latter refused on CPU, where it would be fp32) and a model cast for evaluation
    (`--bf16_full_eval` / `--fp16_full_eval`)."""
    trained = "bf16" if training_args.bf16 else "fp16" if training_args.fp16 else "fp32"
    evaluated = trained
    if getattr(training_args, "bf16_full_eval", False):
        evaluated = "bf16"
    elif getattr(training_args, "fp16_full_eval", False):
        evaluated = "fp16"
    return trained if evaluated == trained else f"{trained} training, {evaluated} evaluation"


def run_card_context(
    model_args: Any,
    data_args: Any,
    training_args: Any,
    prepared: Any,
    metrics: Mapping[str, Any],
    confusion: Mapping[str, list[list[int]]],
) -> CardContext:
    """The card of a finished training run (`hf_spam.training.run.train`)."""
    report = prepared.report
    sms = data_args.dataset in ("sms_spam", SMS_SPAM_HUB_ID) or (
        Path(data_args.dataset).name == "SMSSpamCollection"
    )
    # No local paths on a public card: a custom data set is named by its file name.
    source = "SMS Spam Collection (UCI)" if sms else Path(report.source).name
    base = model_args.model_name_or_path if model_args.init == "pretrained" else None
    world = training_args.world_size
    return CardContext(
        repo_id=training_args.hub_model_id or None,
        base_model=base if base and not Path(base).exists() else None,
        model_size=millions(metrics.get("total_parameters")),
        license=model_args.card_license,
        labels=[prepared.id2label[i] for i in range(prepared.num_labels)],
        dataset_id=SMS_SPAM_HUB_ID if sms else None,
        dataset_name=source,
        data_description=(
            f"{source}; {'balanced by undersampling, ' if report.balanced else ''}"
            f"split {data_args.split_fractions} (--split {report.split}, seed {data_args.split_seed}), "
            f"{report.duplicates_dropped} duplicate texts dropped, padding {report.padding}"
        ),
        split_sizes={split: len(prepared.dataset[split]) for split in SPLITS},
        train_test_overlap=sum(report.cross_split_duplicates.values()),
        max_length=prepared.max_length,
        trainable_layers=model_args.policy.description,
        trainable_parameters=metrics.get("trainable_parameters"),
        total_parameters=metrics.get("total_parameters"),
        hyperparameters={
            "learning_rate": training_args.learning_rate,
            "weight_decay": training_args.weight_decay,
            "lr_scheduler": str(training_args.lr_scheduler_type),
            "gradient_clipping": training_args.max_grad_norm or "none",
            "batch_size": training_args.per_device_train_batch_size * world,
            "gradient_accumulation_steps": training_args.gradient_accumulation_steps,
            "batch_order": str(training_args.train_sampling_strategy),
            "epochs": training_args.num_train_epochs,
            "optimizer": str(training_args.optim),
            "precision": run_precision(training_args),
            **_training_choices(training_args, metrics),
        },
        seed=training_args.seed,
        training_time=f"{metrics.get('train_runtime', 0):.0f} s",
        results={split: split_metrics(dict(metrics), split) for split in SPLITS},
        class_weights=metrics.get("class_weights"),
        best_epoch=metrics.get("best_epoch"),
        confusion_matrix=confusion.get("test"),
        confusion_matrix_split="test",
        plots=["loss-plot.png", "accuracy-plot.png", "confusion-matrix.png"],
    )
