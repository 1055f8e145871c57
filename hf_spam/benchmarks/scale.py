"""The trunk feature store at IMDb-like sizes: memory, time and trunk passes per size.

A model of GPT-2's width (emb_dim 768, 12 heads) with 2 blocks and random weights, trained with
`--trainable_layers last_block` by `hf_spam.training.run.train`, so the frozen trunk is the
embeddings + block 0 and the store holds its float32 output: tokens x 768 x 4 bytes. The texts
are synthetic token rows of IMDb-like lengths (`synthetic`). Each size runs in its own process
(`runner`: peak resident memory is that process's), then a second process with the same
fingerprint, which must compute nothing. Finally a `torchrun --nproc_per_node 2` run at one size
builds a fresh store across both ranks; it must compute each example's trunk exactly once over
both ranks and all epochs, and end with the weights and metrics of a one-process run with the
same global batch (per-device batch halved, one seeded random order, as README's torchrun
section says).

Trunk computations are counted twice, independently: by the store (`computed_per_example`) and
by a forward hook on block 0 counting the rows it runs (the build, and any epoch or evaluation
that missed the store).

    hf-spam benchmark scale                       # 1k, 5k, 20k, 50k texts, 2 epochs
    hf-spam benchmark scale --sizes 1000,5000
    hf-spam benchmark scale --quick               # 50 and 200 texts, 1 epoch
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError
from .runner import Row, load_average, machine_header, progress, registry, run_row, training_flags
from .synthetic import prepared_data, save_synthetic

SAME_ORDER = ("--train_sampling_strategy", "random")  # 1 x 8 == 2 x 4 only with one random order
GLOBAL_BATCH = 8  # and whole global batches: accelerate fills a short last batch on 2 ranks
# with examples from the start, one process takes it short (so the torchrun data is cut to it)
WEIGHT_ATOL = 1e-4  # all-reduce averages two half-batch means: float sums in another order
#: The runs' environment: no tokenizers thread pool in processes that torchrun starts.
QUIET_TOKENIZERS = {"TOKENIZERS_PARALLELISM": "false"}


@dataclass
class ScaleArguments:
    """The data sizes and runs of the scale benchmark."""

    _argument_group_name = "scale benchmark"

    sizes: str = field(
        default="1000,5000,20000,50000", metadata={"help": "Comma-separated numbers of texts."}
    )
    epochs: int = field(default=2, metadata={"help": "Training epochs per size."})
    torchrun_size: int = field(
        default=1000, metadata={"help": "Texts of the 2-process run (0: skip it)."}
    )
    mean_tokens: int = field(default=300, metadata={"help": "Mean text length in tokens."})
    emb_dim: int = field(default=768, metadata={"help": "Model width (GPT-2: 768)."})
    n_heads: int = field(default=12, metadata={"help": "Attention heads (GPT-2: 12)."})
    trunk_cache_dir: str | None = field(
        default=None,
        metadata={"help": "Where the stores go (default: a temporary folder on /tmp or the "
                  "current directory, whichever has more free space)."},
    )  # fmt: skip
    quick: bool = field(default=False, metadata={"help": "50 and 200 texts, 1 epoch."})
    output_json: str | None = field(default=None, metadata={"help": "Also write rows as JSON."})

    def __post_init__(self) -> None:
        if self.quick:
            self.sizes = "50,200" if self.sizes == ScaleArguments.sizes else self.sizes
            self.epochs = 1
            self.torchrun_size = min(self.torchrun_size, 50)
        parts = [s.strip() for s in self.sizes.split(",") if s.strip()]
        if not parts or not all(part.isdigit() and int(part) > 0 for part in parts):
            raise UsageError(
                f"--sizes {self.sizes}: expected positive numbers of texts, e.g. 1000,5000"
            )

    @property
    def size_list(self) -> list[int]:
        return [int(s) for s in self.sizes.split(",") if s.strip()]


# ------------------------------------------------------------------------------------------------
# One run (in its own process)
# ------------------------------------------------------------------------------------------------


@dataclass
class RunRecord:
    """What one process measured (`peak_rss_mb`: its runner's measurement)."""

    rank: int = 0
    world_size: int = 1
    examples: int = 0
    tokens: int = 0
    store_bytes: int = 0
    trunk_seconds: float = 0.0
    epoch_seconds: list[float] = field(default_factory=list)
    computed_per_example: list[int] = field(default_factory=list)  # store order (example ids)
    block0_rows: int = 0  # rows block 0 ran in this process (hook)
    store_used: bool = False
    peak_rss_mb: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)


def train_once(
    args: ScaleArguments, data: str, output: str, cache: str, extra: tuple[str, ...] = ()
) -> RunRecord:
    """Train once on the saved data `data`, the store under `cache`, into `output`; measure it."""
    from transformers import TrainerCallback

    from ..training.arguments import parse_train_arguments
    from ..training.run import train

    record = RunRecord()

    class Measure(TrainerCallback):
        """Times each epoch, and counts the rows block 0 runs: a second count of trunk passes
        beside the store's (the hook is in place before the store is built)."""

        def on_init_end(self, args, state, control, model=None, **kwargs):
            def count(module, inputs, output):
                rows = (output[0] if isinstance(output, tuple) else output).shape[0]
                record.block0_rows += rows

            model.gpt.trf_blocks[0].register_forward_hook(count)

        def on_epoch_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_epoch_end(self, args, state, control, **kwargs):
            record.epoch_seconds.append(time.perf_counter() - self.started)

    overrides = f"n_layers=2,emb_dim={args.emb_dim},n_heads={args.n_heads}"
    shape = ("--config_overrides", overrides, "--trainable_layers", "last_block")
    flags = training_flags(output, args.epochs, cache, *shape, *extra)
    model_args, data_args, training_args = parse_train_arguments(flags)
    result = train(
        model_args, data_args, training_args, callbacks=[Measure()], prepared=prepared_data(data)
    )
    store, record.trunk_seconds = result.trunk_store, result.trunk_seconds
    if store is not None:
        record.store_used = True
        record.examples, record.tokens = len(store), int(store.meta["num_tokens"])
        record.store_bytes = store.nbytes_on_disk()
        record.computed_per_example = store.computed_per_example.tolist()
    record.rank, record.world_size = training_args.process_index, training_args.world_size
    record.metrics = {k: float(v) for k, v in result.metrics.items()
                      if k.endswith(("_loss", "_accuracy")) and v is not None}  # fmt: skip
    return record


ARGUMENTS = ScaleArguments
ROWS = registry(
    Row("build", "a run on a fresh store: builds it", train_once),
    Row("reuse", "a second run with the same fingerprint: computes no trunk", train_once,
        {"extra": ("--max_steps", "1")}),
    Row("one_process", "one process, batch 8, one seeded random order", train_once,
        {"extra": SAME_ORDER}),
    Row("two_processes", "torchrun x2 (gloo), per-device batch 4, the same order", train_once,
        {"extra": (*SAME_ORDER, "--per_device_train_batch_size", "4", "--ddp_backend", "gloo")},
        processes=2),
)  # fmt: skip


def run(args: ScaleArguments, row: str, data: Path, output: Path, cache: Path) -> list[RunRecord]:
    """The row's training run in fresh process(es); the records of every rank."""
    paths = {"data": str(data), "output": str(output), "cache": str(cache)}
    result = run_row(__name__, ROWS[row], args, paths, env=QUIET_TOKENIZERS)
    return [RunRecord(**{**record, "peak_rss_mb": result.peak_memory_mb})
            for record in result.records]  # fmt: skip


# ------------------------------------------------------------------------------------------------
# The table
# ------------------------------------------------------------------------------------------------


def store_root(requested: str | None) -> Path:
    """The requested folder, else a temporary one where the most disk space is free."""
    if requested:
        return Path(requested).expanduser()
    candidates = [Path(tempfile.gettempdir()), Path.cwd()]
    best = max(candidates, key=lambda p: shutil.disk_usage(p).free)
    return Path(tempfile.mkdtemp(prefix="hf_spam-scale-", dir=best))


def size_row(n: int, first: RunRecord, second: RunRecord) -> dict[str, Any]:
    later = first.epoch_seconds[1:] or first.epoch_seconds  # the first epoch carries warm-up
    per_example = np.asarray(first.computed_per_example) if first.store_used else None
    return {
        "texts": n,
        "tokens": first.tokens,
        "peak RSS MB": round(first.peak_rss_mb),
        "store GB": f"{first.store_bytes / 1e9:.2f}" if first.store_used else "off",
        "trunk pass s": f"{first.trunk_seconds:.1f}",
        "s/epoch": f"{np.mean(later):.1f}" if later else "",
        "trunk/example": _per_example(per_example, first.block0_rows, n),
        "2nd run trunk/example": _per_example(
            np.asarray(second.computed_per_example) if second.store_used else None,
            second.block0_rows, n,
        ),
    }  # fmt: skip


def _per_example(store_counts: np.ndarray | None, block0_rows: int, n: int) -> str:
    """'1' (store, every example once) or the range, and the hook's rows per example."""
    hook = block0_rows / n if n else 0.0
    if store_counts is None or not len(store_counts):
        return f"store off; hook {hook:g}"
    lo, hi = int(store_counts.min()), int(store_counts.max())
    counts = f"{lo}" if lo == hi else f"{lo}-{hi}"
    return f"{counts} (hook {hook:g})"


def torchrun_check(two: list[RunRecord], one: RunRecord, weights: tuple[Any, Any]) -> dict:
    """Across both ranks: trunk passes per example (store and hook), and equality with `one`:
    the final weights and accuracies. The losses are shown, not judged: the 2-process run's
    evaluation losses are Trainer's distributed evaluation, which differs from evaluating the
    same weights in one process (see README)."""
    per_example = np.sum([r.computed_per_example for r in two], axis=0)
    hook_rows = sum(r.block0_rows for r in two)
    a, b = weights
    max_weight_diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    # Final-model losses only: `train_running_loss` is each process's own running average.
    losses = [k for k in one.metrics if k.endswith("_loss") and k != "train_running_loss"]
    loss_diff = max(abs(one.metrics[k] - two[0].metrics[k]) for k in losses)
    acc_equal = all(one.metrics[k] == two[0].metrics[k] for k in one.metrics if "accuracy" in k)
    return {
        "ranks": len(two),
        "trunk/example over ranks": f"{int(per_example.min())}-{int(per_example.max())}",
        "exactly once": bool((per_example == 1).all()) and hook_rows == len(per_example),
        "hook rows / examples": f"{hook_rows} / {len(per_example)}",
        "max |weight diff|": f"{max_weight_diff:.2e}",
        "accuracies equal": acc_equal,
        "max |eval loss diff|": f"{loss_diff:.2e}",
        "equal to 1 process": max_weight_diff <= WEIGHT_ATOL and acc_equal,
    }


def run_scale(args: ScaleArguments, root: Path) -> tuple[list[dict], dict | None]:
    """Every size (a run + a second run on the same store), then the 2-process check."""
    from safetensors.torch import load_file

    rows = []
    for n in args.size_list:
        progress(f"scale: {n} texts")
        data = save_synthetic(root / f"data-{n}", n, args.mean_tokens)
        cache = root / f"stores-{n}"
        first = run(args, "build", data, root / f"run-{n}", cache)[0]
        second = run(args, "reuse", data, root / f"run-{n}-again", cache)[0]
        rows.append(size_row(n, first, second))
        shutil.rmtree(cache, ignore_errors=True)  # the next size needs the space
    check = None
    if args.torchrun_size:
        n = args.torchrun_size
        progress(f"scale: torchrun, {n} texts")
        data = save_synthetic(root / f"data-torchrun-{n}", n, args.mean_tokens, GLOBAL_BATCH)
        one = run(args, "one_process", data, root / "one", root / "stores-one")[0]
        two = run(args, "two_processes", data, root / "two", root / "stores-two")
        weights = (load_file(root / "one" / "model.safetensors"),
                   load_file(root / "two" / "model.safetensors"))  # fmt: skip
        check = {"texts": n, **torchrun_check(two, one, weights)}
    return rows, check


def targets(rows: list[dict], check: dict | None) -> list[str]:
    """The scale targets, each with the figures and met / not met."""
    lines = []
    if len(rows) > 1:
        small, large = rows[0], rows[-1]
        rss = large["peak RSS MB"] / small["peak RSS MB"]
        lines.append(f"peak RSS {large['texts']} / {small['texts']} texts: {rss:.2f}x "
                     f"(target <= 1.5x): {'met' if rss <= 1.5 else 'NOT met'}")  # fmt: skip
        if small["s/epoch"] and large["s/epoch"]:
            ratio = float(large["s/epoch"]) / float(small["s/epoch"])
            ideal = large["texts"] / small["texts"]
            ok = abs(ratio / ideal - 1) <= 0.2
            lines.append(f"s/epoch {large['texts']} / {small['texts']} texts: {ratio:.1f}x "
                         f"(linear: {ideal:.0f}x +- 20%): {'met' if ok else 'NOT met'}")  # fmt: skip
    once = all(r["trunk/example"].startswith("1 ") for r in rows)
    again = all(r["2nd run trunk/example"].startswith("0 ") for r in rows)
    lines.append(f"1 trunk pass per example per size: {'met' if once else 'NOT met'}; "
                 f"0 on the second run: {'met' if again else 'NOT met'}")  # fmt: skip
    if check:
        lines.append(f"torchrun x2: exactly once across ranks: "
                     f"{'met' if check['exactly once'] else 'NOT met'}; equal to 1 process: "
                     f"{'met' if check['equal to 1 process'] else 'NOT met'}")  # fmt: skip
    return lines


def header(args: ScaleArguments, root: Path, free_gb: float, seconds: float) -> str:
    machine = machine_header(cpu=[f"load average {load_average()}"])
    return (f"{machine}; stores in {root} ({free_gb:.0f} GB free); width {args.emb_dim}, "
            f"2 blocks, last_block trainable, mean {args.mean_tokens} tokens, {args.epochs} "
            f"epoch(s); {seconds:.0f} s in all")  # fmt: skip


def main(args: ScaleArguments) -> None:
    from ..files import write_json
    from ..reporting import format_table

    root = store_root(args.trunk_cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    free = shutil.disk_usage(root).free / 1e9
    try:
        rows, check = run_scale(args, root)
    finally:
        if not args.trunk_cache_dir:
            shutil.rmtree(root, ignore_errors=True)
    print(header(args, root, free, time.perf_counter() - started))
    print(format_table(rows))
    if check:
        print(format_table([check]))
    print("\n".join(targets(rows, check)))
    if args.output_json:
        write_json(args.output_json, {"sizes": rows, "torchrun": check})


__all__ = ["ARGUMENTS", "ROWS", "RunRecord", "ScaleArguments", "main", "run_scale"]
