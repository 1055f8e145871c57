"""How `Trainer` feeds the model: the trunk cache, the order, the book's optimizer.

What trains is `hf_spam.training.policies`. `SpamTrainer` is `Trainer` with the book's loop where they differ: AdamW decays every parameter,
the training loader alone drops a partial batch, and `--train_sampling_strategy book` gives the
book's batch order (`hf_spam.training.sampling`). It can also feed cached hidden states of the frozen
blocks instead of token ids (any object with `start_block` and `block_inputs(...)`, see
`TrunkCache`), evaluate the training set after each evaluation, under its own `train_` keys
(the book's plots), and weight the training cross-entropy per class (`--class_weights`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from transformers import Trainer

from ..model.modeling import GPTForSequenceClassification
from .class_weights import weighted_cross_entropy
from .outputs import meta_skeleton
from .sampling import BookOrderSampler

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------------
# Frozen-trunk cache
# ------------------------------------------------------------------------------------------------


class TrunkCache(Protocol):
    """What `SpamTrainer` needs from a cache of the frozen blocks' output (in memory here; an
    on-disk feature store can take its place)."""

    start_block: int

    def block_inputs(
        self,
        model: GPTForSequenceClassification,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        example_ids: torch.Tensor,
    ) -> torch.Tensor: ...


def trunk_view(model: GPTForSequenceClassification, dataset: Any) -> Any:
    """`dataset` with the token rows the model's trunk actually sees (`trunk_inputs`).

    For `flexible` that is the data as is; for the book's `last` / `first` it is every text
    cut and padded to the model's `padded_length`, pads included as tokens, so the stored
    states are the ones the head reads.
    """
    if model.config.trainable_token_pos == "flexible":
        return dataset

    def rows(example: Mapping[str, Any]) -> dict[str, list[int]]:
        ids = torch.tensor([example["input_ids"]])
        mask = torch.tensor([example["attention_mask"]])
        ids, mask = model.trunk_inputs(ids, mask)
        seen = ids[0] if mask is None else ids[0][mask[0].bool()]
        return {"input_ids": seen.tolist(), "attention_mask": [1] * len(seen)}

    return dataset.map(rows, desc="Trunk rows")


def open_trunk_cache(trainer: Trainer, dataset: Any, start_block: int, model_args: Any) -> Any:
    """The trunk feature store of `dataset` for this run (built once, reused by later runs), or
    None when the disk cannot hold it (`open_trunk_store` says so in the log)."""
    from ..features import open_trunk_store
    from ..files import write_failure

    model = trainer.accelerator.unwrap_model(trainer.model)
    try:
        return open_trunk_store(
            model,
            trunk_view(model, dataset),
            start_block,
            model_args.trunk_cache_dir,
            disable_tqdm=trainer.args.disable_tqdm,
        )
    except Exception as err:
        reason = write_failure(err)
        # One process can fall back alone (the store is removed); ranks must agree, so a
        # multi-process run stops instead.
        if reason is None or trainer.args.world_size > 1:
            raise
        logger.warning(
            "Trunk feature store off: it could not be written (%s) under %s; the frozen blocks "
            "will run in every epoch (free space or pass --trunk_cache_dir elsewhere)",
            reason,
            model_args.trunk_cache_dir or "the default cache folder",
        )
        return None


# ------------------------------------------------------------------------------------------------
# Trainer
# ------------------------------------------------------------------------------------------------


class SpamTrainer(Trainer):
    """`Trainer` that feeds cached frozen-trunk states instead of token ids when it can,
    evaluates `train_eval_dataset` (keys `train_*`) after each evaluation of the validation set
    (keys `eval_*`, Trainer's convention), drops a partial last batch in training only, decays
    every weight as the book's AdamW does, and can draw the book's batch order
    (`--train_sampling_strategy book`)."""

    def __init__(
        self,
        *args: Any,
        trunk_cache: TrunkCache | None = None,
        train_eval_dataset: Any = None,
        class_weights: list[float] | None = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.trunk_cache = trunk_cache
        # The model's structure before an engine shards it (meta tensors): the final save
        # rebuilds the full model from the gathered weights in it.
        self.skeleton = meta_skeleton(self.model)
        self.train_eval_dataset = train_eval_dataset
        self.class_weights = class_weights

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
        metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        # Only the periodic evaluation during training (default set and prefix); a callback
        # cannot call evaluate, it has no trainer.
        if self.train_eval_dataset is not None and eval_dataset is None:
            if metric_key_prefix == "eval":
                # A report must not change the training: this evaluation draws from torch's RNG,
                # which seeds the next epoch's shuffle.
                with torch.random.fork_rng(devices=[]):
                    super().evaluate(self.train_eval_dataset, ignore_keys, "train")
        return metrics

    def training_step(self, model, inputs, num_items_in_batch=None):
        if self.args.train_sampling_strategy == "book":
            # The book's loop divides every loss by the accumulation steps, a short last group's
            # too (Trainer divides that one by its own length).
            self.current_gradient_accumulation_steps = self.args.gradient_accumulation_steps
        return super().training_step(model, inputs, num_items_in_batch)

    def get_decay_parameter_names(self, model: torch.nn.Module) -> list[str]:
        # The book's AdamW decays every parameter; Trainer's default spares biases and norms.
        return [name for name, _ in model.named_parameters()]

    def _get_train_sampler(self, train_dataset=None):
        if self.args.train_sampling_strategy != "book":
            return super()._get_train_sampler(train_dataset)
        dataset = self.train_dataset if train_dataset is None else train_dataset
        batch_size = self.args.per_device_train_batch_size * max(1, self.args.world_size)
        return BookOrderSampler(
            len(dataset), batch_size, self.args.dataloader_drop_last, self.args.seed
        )

    def _get_dataloader(self, dataset, description, batch_size, sampler_fn=None, is_training=False,
                        dataloader_key=None):  # fmt: skip
        # Trainer applies --dataloader_drop_last to evaluation as well; like the book's loaders
        # it should drop only training batches (a score must count every example).
        drop_last = self.args.dataloader_drop_last
        self.args.dataloader_drop_last = drop_last and is_training
        try:
            return super()._get_dataloader(
                dataset, description, batch_size, sampler_fn, is_training, dataloader_key
            )
        finally:
            self.args.dataloader_drop_last = drop_last

    def _use_cache(self, model: torch.nn.Module, inputs: Mapping[str, Any]) -> dict[str, Any]:
        inputs = dict(inputs)
        example_ids = inputs.pop("example_id", None)
        if self.trunk_cache is None or example_ids is None:
            return inputs
        unwrapped = self.accelerator.unwrap_model(model)
        ids, mask = unwrapped.trunk_inputs(inputs.pop("input_ids"), inputs["attention_mask"])
        mask = torch.ones_like(ids) if mask is None else mask
        inputs["attention_mask"] = mask
        inputs["block_inputs"] = self.trunk_cache.block_inputs(unwrapped, ids, mask, example_ids)
        inputs["start_block"] = self.trunk_cache.start_block
        return inputs

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = self._use_cache(model, inputs)  # every path (cached trunk or not) comes here
        if self.class_weights is None or not model.training or "labels" not in inputs:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        # The training loss only: validation and test losses stay the plain cross-entropy.
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        loss = weighted_cross_entropy(outputs.logits, labels, self.class_weights)
        return (loss, outputs) if return_outputs else loss

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


def with_example_ids(dataset: Any) -> Any:
    """The tokenized splits with a unique `example_id` per row across splits (cache keys)."""
    splits = {}
    offset = 0
    for split, rows in dataset.items():
        splits[split] = rows.add_column("example_id", list(range(offset, offset + len(rows))))
        offset += len(rows)
    return type(dataset)(splits)


__all__ = [
    "CollatorWithExampleIds",
    "SpamTrainer",
    "TrunkCache",
    "open_trunk_cache",
    "trunk_view",
    "with_example_ids",
]
