"""A run's files on disk: complete checkpoints to resume from, and the final folder.

`Trainer` writes checkpoints in place, so a kill while saving leaves a partial `checkpoint-N`;
resuming therefore takes only checkpoints whose every file reads back. The final model folder
(weights, tokenizer, metrics, plots, card) is written into a staging folder and moved into
place only when everything is written, so a failure (a full disk) leaves the folder as it was.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from ..constants import EXAMPLES_FILE, SAFETENSORS_NAME, SPLITS, TIMING_SUFFIXES
from ..errors import UsageError
from ..files import FINAL_STAGING, FINAL_STAGING_GLOB, OutputWriteError, writing
from ..model.lora import ADAPTER_DIR, merge_lora, save_adapter

logger = logging.getLogger(__name__)

#: --resume_from_checkpoint values meaning "the newest complete checkpoint in --output_dir".
RESUME_LAST = ("true", "True", "last")
_CHECKPOINT_WEIGHTS = (
    "model.safetensors",
    "model.safetensors.index.json",
    "adapter_model.safetensors",
)
# What the engines write instead (accelerate's `save_fsdp_model` / `save_fsdp_optimizer`, and
# DeepSpeed's `save_checkpoint` into `global_step<N>/`): a full state dict as one `.bin`, a
# sharded one per rank (`_rank<i>.bin`) or as a distributed-checkpoint folder (`.metadata`).
_FSDP_WEIGHTS = ("pytorch_model_fsdp*.bin", "pytorch_model_fsdp_*/.metadata")
_FSDP_OPTIMIZER = ("optimizer*.bin", "optimizer_*/.metadata")
_DEEPSPEED_WEIGHTS = ("global_step*/*model_states.pt",)
_DEEPSPEED_OPTIMIZER = ("global_step*/*optim_states.pt",)


def _readable(path: Path) -> bool:
    """The file is complete as far as its format tells cheaply (a kill mid-write truncates it)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), "pt"):
                return True
        if path.suffix in (".pt", ".pth", ".bin"):  # torch.save's zip ends with its directory
            return zipfile.is_zipfile(path)
        if path.name == ".metadata":  # a distributed checkpoint's index, written last
            from torch.distributed.checkpoint import FileSystemReader

            FileSystemReader(str(path.parent)).read_metadata()
            return True
        json.loads(path.read_text(encoding="utf-8"))
        return True
    except Exception:  # noqa: BLE001 - any failure to read means "incomplete"
        return False


def _any_readable(folder: Path, patterns: tuple[str, ...]) -> bool:
    return any(_readable(path) for pattern in patterns for path in folder.glob(pattern))


def checkpoint_problems(folder: Path) -> str:
    """What `folder` lacks of a checkpoint `Trainer` can resume from ("" when complete):
    weights, optimizer and scheduler state, trainer_state.json and the rng state, all readable,
    in the layout of the engine that wrote it: `Trainer` alone (optimizer.pt), FSDP
    (pytorch_model_fsdp*, optimizer.bin or optimizer_0/) or DeepSpeed (global_step*/, which
    holds the scheduler too when DeepSpeed's config made it)."""
    deepspeed = any(path.is_dir() for path in folder.glob("global_step*"))
    fsdp = not deepspeed and _any_readable(folder, _FSDP_WEIGHTS + _FSDP_OPTIMIZER)
    weights, optimizer = _CHECKPOINT_WEIGHTS, ("optimizer.pt",)
    if deepspeed:
        weights, optimizer = weights + _DEEPSPEED_WEIGHTS, _DEEPSPEED_OPTIMIZER
    elif fsdp:
        weights, optimizer = weights + _FSDP_WEIGHTS, _FSDP_OPTIMIZER
    problems = [] if _any_readable(folder, weights) else ["model weights"]
    if not _any_readable(folder, optimizer):
        problems.append("optimizer state" if deepspeed or fsdp else "optimizer.pt")
    required = ("trainer_state.json",) if deepspeed else ("scheduler.pt", "trainer_state.json")
    problems += [name for name in required if not _any_readable(folder, (name,))]
    if deepspeed and (folder / "scheduler.pt").is_file() and not _readable(folder / "scheduler.pt"):
        problems.append("scheduler.pt")
    if not any(_readable(path) for path in folder.glob("rng_state*.pth")):
        problems.append("rng_state.pth")
    return f"missing or unreadable {', '.join(problems)}" if problems else ""


def resolve_checkpoint(resume: str | None, output_dir: Path) -> str | None:
    """The checkpoint to resume from: `last` is the newest complete `checkpoint-N` in
    `output_dir`; incomplete ones (a kill while saving) are skipped with a warning."""
    if not resume:
        return None
    if resume not in RESUME_LAST:
        return resume
    found = [p for p in output_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if p.is_dir()]
    found = [p for p in found if p.name.rsplit("-", 1)[1].isdigit()]
    for folder in sorted(found, key=lambda p: int(p.name.rsplit("-", 1)[1]), reverse=True):
        problems = checkpoint_problems(folder)
        if not problems:
            logger.info("Resuming from %s", folder)
            return str(folder)
        logger.warning("Skipping incomplete checkpoint %s: %s", folder, problems)
    raise UsageError(f"--resume_from_checkpoint {resume}: no complete checkpoint in {output_dir}")


def meta_skeleton(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of `model` whose parameters are meta tensors (no memory; buffers are copied): its
    structure, taken before an engine shards it, to rebuild the full model on one rank."""
    memo: dict[int, Any] = {
        id(p): torch.nn.Parameter(torch.empty_like(p, device="meta"), p.requires_grad)
        for p in model.parameters()
    }
    return copy.deepcopy(model, memo)


def is_sharded(trainer: Trainer) -> bool:
    """The model's parameters are split across ranks (FSDP 1 or 2)."""
    return bool(getattr(trainer, "is_fsdp_enabled", False)) or any(
        hasattr(p, "full_tensor") for p in trainer.model.parameters()
    )


def gather_full_model(
    model: torch.nn.Module, skeleton: torch.nn.Module, main: bool
) -> torch.nn.Module | None:
    """Every rank: the full state dict is gathered (one collective, FSDP 1 or 2, or a plain
    model); the main process gets it on CPU in a copy of `skeleton` (None elsewhere), where
    LoRA can be folded and merged without touching a sharded parameter."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    state = get_model_state_dict(model, options=options)
    if not main:
        return None
    full = copy.deepcopy(skeleton)
    full.load_state_dict(state, assign=True)
    return full.eval()


def _save_gathered(trainer: Trainer, model: torch.nn.Module, folder: Path) -> None:
    """What `trainer.save_model` writes, from the main process's gathered copy."""
    model.save_pretrained(folder, safe_serialization=True)
    if trainer.processing_class is not None:
        trainer.processing_class.save_pretrained(folder)
    torch.save(trainer.args, folder / "training_args.bin")


def _staging_folder(output_dir: Path, main: bool) -> Path:
    """A new staging folder inside `output_dir`, made by the main process; every process gets
    its path (they all write the weights into it). What stopped runs left is removed first:
    the run holds the folder's lock, so no other process is writing them."""
    from accelerate.utils import broadcast_object_list

    name = [None]
    if main:
        for leftover in output_dir.glob(FINAL_STAGING_GLOB):
            logger.info("Removing %s, left by a run that was stopped while saving", leftover)
            shutil.rmtree(leftover, ignore_errors=True)
        name = [
            Path(tempfile.mkdtemp(prefix=f"{FINAL_STAGING}-", suffix=".tmp", dir=output_dir)).name
        ]
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        broadcast_object_list(name, from_process=0)
    return output_dir / name[0]


def save_final_outputs(
    trainer: Trainer,
    card: Any,
    metrics: Mapping[str, Any],
    confusion: Mapping[str, list[list[int]]],
    examples: list[dict[str, str]] | None = None,
    adapters: bool = False,
    adapter_base: str | None = None,
) -> list[Path]:
    """Model, tokenizer, metrics, the book's plots and the model card, written into a staging
    folder inside `output_dir` and moved into place only when all are written. Every process
    calls it (`trainer.save_model` gathers sharded weights under FSDP/ZeRO-3); only the main
    process writes the rest. Returns the final files (main process) or [].

    With `adapters` (a LoRA run) the adapters are first written as a peft folder,
    `<output_dir>/adapter`, when `adapter_base` names the weights they load onto, then merged
    into the weights: the model folder holds a plain model that needs no peft.
    """
    from ..files import write_json
    from ..hub.rendering import render_model_card
    from ..reporting import plot_confusion_matrix, plot_training_curves

    output_dir = Path(trainer.args.output_dir)
    adapter, main = None, trainer.is_world_process_zero()
    # Sharded (FSDP): every rank joins one gather, the main process alone folds, merges and saves
    # its CPU copy, so no rank waits on another. Else every rank merges its own full model.
    gathered = None
    if is_sharded(trainer):
        gathered = gather_full_model(trainer.model_wrapped, trainer.skeleton, main)
    model = gathered if gathered is not None else trainer.model
    if adapters and (main or gathered is None):
        if adapter_base is not None and main:
            adapter = save_adapter(model, output_dir / ADAPTER_DIR, adapter_base)
        model = merge_lora(model)
        if gathered is None:
            trainer.model = model
    staging = _staging_folder(output_dir, main)
    try:
        if gathered is None:
            writing(output_dir / SAFETENSORS_NAME, lambda: trainer.save_model(str(staging)))
        elif main:
            writing(output_dir / SAFETENSORS_NAME, lambda: _save_gathered(trainer, model, staging))
        if not main:
            return []
        writing(
            output_dir / "all_results.json",
            lambda: write_json(
                staging / "all_results.json", {**metrics, "confusion_matrix": dict(confusion)}
            ),
        )
        writing(
            output_dir / "trainer_state.json",
            lambda: trainer.state.save_to_json(str(staging / "trainer_state.json")),
        )
        args = trainer.args
        per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps
        writing(
            output_dir / "loss-plot.png",
            lambda: plot_training_curves(
                trainer.state.log_history, staging, examples_per_step=per_step * args.world_size
            ),
        )
        writing(
            output_dir / "confusion-matrix.png",
            lambda: plot_confusion_matrix(
                confusion["test"], card.labels, staging / "confusion-matrix.png", "Test split"
            ),
        )
        if examples:  # what `hf-spam demo` and a Space offer to try first
            writing(
                output_dir / EXAMPLES_FILE,
                lambda: write_json(staging / EXAMPLES_FILE, examples),
            )
        # Kept so the card can be rendered again, e.g. with the Hub repo id when pushing.
        writing(output_dir / "card_context.json", lambda: card.save(staging))
        shown = dataclasses.replace(card, repo_id=card.repo_id or output_dir.as_posix())
        writing(
            output_dir / "README.md",
            lambda: render_model_card(None, staging / "README.md", context=shown),
        )
    except BaseException:
        if main:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    # Renames within one folder: they cannot run out of space. A kill between them must not
    # leave a folder that looks finished: an old card goes first, the new one last (its presence
    # marks a finished folder), and the staging folder holds files until then (`check_model_folder`
    # refuses such a folder; the next run's save removes what is left of it).
    names = sorted(p.name for p in staging.iterdir() if p.name != "README.md") + ["README.md"]
    (output_dir / "README.md").unlink(missing_ok=True)
    for name in names:
        os.replace(staging / name, output_dir / name)
    staging.rmdir()
    return [output_dir / name for name in names] + ([adapter] if adapter is not None else [])


def evaluate_splits(
    trainer: Trainer, dataset: Mapping[str, Any], compute_metrics: Any
) -> tuple[dict[str, Any], dict[str, list[list[int]]]]:
    """Every split's metrics under `<split>_` keys (timings left out) with its size, and its
    confusion matrix: the final model's scores, for the metrics file and the card."""
    metrics: dict[str, Any] = {}
    confusion: dict[str, list[list[int]]] = {}
    for split in SPLITS:
        evaluated = trainer.evaluate(dataset[split], metric_key_prefix=split)
        metrics.update({k: v for k, v in evaluated.items() if not k.endswith(TIMING_SUFFIXES)})
        metrics[f"{split}_samples"] = len(dataset[split])
        confusion[split] = compute_metrics.confusion_matrix
    return metrics, confusion


__all__ = [
    "RESUME_LAST",
    "OutputWriteError",
    "checkpoint_problems",
    "evaluate_splits",
    "resolve_checkpoint",
    "save_final_outputs",
]
