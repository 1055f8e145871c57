"""Building the trunk feature store: every rank computes a share, rank 0 joins them.

`open_trunk_store` computes the frozen blocks' output once (length-sorted batches, a progress
bar, the size logged first) and returns a `TrunkFeatureStore`. The store is built in a temporary
folder beside its destination and renamed when complete, so a killed build leaves nothing a later
run would trust. Shards are written one at a time (memory bounded by the shard size). Several
processes: every rank calls `open_trunk_store`; the length-sorted batches are dealt out to the
ranks, each writes its shards into one folder (chosen by rank 0), rank 0 writes the index and
renames it, and every rank reads that store. Each example passes the trunk once across ranks, in
1/world_size of the time, instead of the others idling at a barrier.

Rank 0 resolves the store's path and every rank uses that one (ranks may have different caches).
Every rank then checks it sees rank 0's folder (a marker file, or the finished `store.json`);
ranks that do not (node-local disks) build the same store at the same path on their own disk,
once per node: the node's ranks share that build, its first rank holding the node's lock.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import tempfile
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import save_file
from tqdm.auto import tqdm

from ..errors import DataError
from ..files import output_lock, remove_leftovers, write_json
from ..model.modeling import length_buckets
from .store import (
    FLOAT32_BYTES,
    INDEX_FILE,
    STORE_FILE,
    STORE_VERSION,
    ScannedData,
    TrunkFeatureStore,
    default_store_root,
    scan_dataset,
    trunk_fingerprint,
    trunk_of,
    unmaterialised_reason,
)

logger = logging.getLogger(__name__)

DISK_HEADROOM = 1.05  # leave 5% of the estimate free beyond it
PROBE_FILE = "visible.txt"  # in a build folder: its nonce tells a rank it sees that folder


def _rank_and_world() -> tuple[int, int]:
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _from_rank0(obj: Any, world: int) -> Any:
    """Rank 0's `obj` on every rank (ranks must agree on reuse / build / skip, and outcome)."""
    box = [obj]
    if world > 1:
        torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def _gathered(obj: Any, world: int) -> list[Any]:
    """Every rank's `obj`, in rank order, on every rank."""
    out = [obj] * world
    if world > 1:
        torch.distributed.all_gather_object(out, obj)
    return out


@dataclass
class _Group:
    """The ranks that build one copy of the store (all of them, or one node's), by global rank;
    `handle` is their process group (None: the default group)."""

    ranks: list[int]
    handle: Any = None

    @property
    def rank(self) -> int:
        return self.ranks.index(_rank_and_world()[0])

    @property
    def world(self) -> int:
        return len(self.ranks)

    def share(self, obj: Any) -> Any:
        """The group's first rank's `obj` on each of its ranks."""
        box = [obj]
        if self.world > 1:
            torch.distributed.broadcast_object_list(box, src=self.ranks[0], group=self.handle)
        return box[0]

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier(group=self.handle)


def _sees(path: Path, fingerprint: str, plan: dict[str, Any]) -> bool:
    """This rank sees the folder rank 0 planned: the finished store, or the build's marker."""
    if plan["action"] == "reuse":
        return _is_complete(path, fingerprint)
    try:
        return (Path(plan["tmp"]) / PROBE_FILE).read_text(encoding="utf-8") == plan["nonce"]
    except OSError:
        return False


def _storage_groups(seen: list[bool], keys: list[str]) -> list[_Group]:
    """The ranks that see rank 0's folder first, then those that do not, one group per node.
    Every rank creates every group (`new_group` is collective)."""
    if all(seen):
        return [_Group(list(range(len(seen))))]
    members: dict[str, list[int]] = {}
    for rank, (sees, key) in enumerate(zip(seen, keys, strict=True)):
        members.setdefault("" if sees else key, []).append(rank)
    ordered = [members.pop("")] + [members[key] for key in sorted(members, key=members.get)]
    return [_Group(ranks, torch.distributed.new_group(ranks)) for ranks in ordered]


def _is_complete(path: Path, fingerprint: str) -> bool:
    try:
        meta = json.loads((path / STORE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return meta.get("fingerprint") == fingerprint and meta.get("version") == STORE_VERSION


def _plan(path: Path, fingerprint: str, needed: int) -> dict[str, Any]:
    """Rank 0's decision: reuse the finished store, build it in a new folder, or skip it."""
    if _is_complete(path, fingerprint):
        return {"action": "reuse"}
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path, ".tmp-")  # under the store's lock: builds that were stopped
    free = shutil.disk_usage(path.parent).free
    if free < needed * DISK_HEADROOM:
        logger.warning(
            "Trunk feature store off: it needs %.2f GB and %s has %.2f GB free; the frozen "
            "blocks will run in every epoch (free space or pass --trunk_cache_dir elsewhere)",
            needed / 1e9, path.parent, free / 1e9,
        )  # fmt: skip
        return {"action": "skip"}
    tmp = tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    nonce = uuid.uuid4().hex
    (Path(tmp) / PROBE_FILE).write_text(nonce, encoding="utf-8")
    return {"action": "build", "tmp": tmp, "nonce": nonce}


class _ShardWriter:
    """One rank's states, copied into one preallocated buffer of about `shard_bytes` and
    written as a safetensors shard whenever the next example would not fit."""

    def __init__(self, folder: Path, rank: int, shard_bytes: int, emb_dim: int):
        self.folder, self.rank, self.names = folder, rank, []
        self._buffer = torch.empty((max(shard_bytes // (emb_dim * FLOAT32_BYTES), 1), emb_dim))
        self._rows, self._starts, self._filled = [], [], 0

    def add(self, row: int, states: torch.Tensor) -> None:
        if self._filled + len(states) > len(self._buffer):
            self.flush()
            if len(states) > len(self._buffer):
                self._buffer = torch.empty((len(states), self._buffer.shape[1]))
        self._buffer[self._filled : self._filled + len(states)] = states
        self._rows.append(row)
        self._starts.append(self._filled)
        self._filled += len(states)

    def flush(self) -> None:
        if self._rows:
            name = f"rank{self.rank:03d}-{len(self.names):05d}.safetensors"
            tensors = {"hidden": self._buffer[: self._filled], "rows": torch.tensor(self._rows),
                       "starts": torch.tensor(self._starts)}  # fmt: skip
            save_file(tensors, str(self.folder / name))
            self.names.append(name)
        self._rows, self._starts, self._filled = [], [], 0


def _token_batch(data: Any, rows: list[int], width: int) -> torch.Tensor:
    """Real tokens of `rows`, right-padded with 0 (never attended: causal mask + padding)."""
    batch = data[rows]
    out = torch.zeros((len(rows), width), dtype=torch.long)
    masks = batch.get("attention_mask", [None] * len(rows))
    for i, (ids, mask) in enumerate(zip(batch["input_ids"], masks, strict=True)):
        ids = np.asarray(ids, dtype=np.int64)
        real = ids if mask is None else ids[np.asarray(mask, dtype=bool)]
        out[i, : len(real)] = torch.from_numpy(real)
    return out


@torch.no_grad()
def _compute_shards(
    model: torch.nn.Module,
    scanned: ScannedData,
    buckets: list[list[int]],
    start_block: int,
    writer: _ShardWriter,
    disable_tqdm: bool,
) -> np.ndarray:
    """Run the trunk over `buckets` (rows of `scanned`), hand the states to `writer`; returns
    the trunk passes per row (1 for each row of `buckets`)."""
    trunk = trunk_of(model)
    device = next(trunk.parameters()).device
    columns = [c for c in ("input_ids", "attention_mask") if c in scanned.dataset.column_names]
    data = scanned.dataset.select_columns(columns).with_format(None)
    computed = np.zeros(len(scanned.lengths), dtype=np.int64)
    total = int(sum(scanned.lengths[rows].sum() for rows in buckets))
    was_training = trunk.training
    trunk.eval()  # dropout off: the features are the deterministic trunk
    bar = tqdm(total=total, unit="tok", unit_scale=True, disable=disable_tqdm,
               desc=f"Trunk features (blocks < {start_block})")  # fmt: skip
    try:
        for rows in buckets:
            lengths = scanned.lengths[rows]
            input_ids = _token_batch(data, rows, max(int(lengths.max()), 1))
            mask = torch.arange(input_ids.shape[1])[None, :] < torch.from_numpy(lengths)[:, None]
            out = trunk(
                input_ids=input_ids.to(device),
                attention_mask=None if mask.all() else mask.long().to(device),
                stop_block=start_block,
            )
            hidden = out.last_hidden_state.float().cpu()
            computed[rows] += 1
            for i, row in enumerate(rows):
                writer.add(row, hidden[i, : lengths[i]])
            bar.update(int(lengths.sum()))
        writer.flush()
    finally:
        bar.close()
        trunk.train(was_training)
    return computed


def _finalize(tmp: Path, scanned: ScannedData, world: int, meta: dict[str, Any]) -> None:
    """Rank 0: join every rank's shards into one index, then write `store.json` (last)."""
    (tmp / PROBE_FILE).unlink(missing_ok=True)
    shards: list[str] = []
    for rank in range(world):
        done = tmp / f"rank{rank:03d}.json"
        if not done.is_file():
            raise DataError(
                f"rank {rank}'s trunk features did not appear in {tmp}: the trunk cache "
                "directory must be on a filesystem that every process sees"
            )
        shards += json.loads(done.read_text(encoding="utf-8"))["shards"]
        done.unlink()
    shard_of = np.full(len(scanned.lengths), -1, dtype=np.int64)
    start = np.zeros(len(scanned.lengths), dtype=np.int64)
    for number, name in enumerate(shards):
        with safe_open(str(tmp / name), framework="np") as handle:
            rows = handle.get_tensor("rows")
            shard_of[rows], start[rows] = number, handle.get_tensor("starts")
    if (shard_of < 0).any():
        missing = int(scanned.example_ids[np.flatnonzero(shard_of < 0)[0]])
        raise DataError(f"{tmp}: no trunk features were written for example_id {missing}")
    order = np.argsort(scanned.example_ids, kind="stable")
    index = {"example_id": scanned.example_ids, "shard": shard_of, "start": start,
             "length": scanned.lengths}  # fmt: skip
    save_numpy({k: np.ascontiguousarray(v[order]) for k, v in index.items()}, str(tmp / INDEX_FILE))
    write_json(tmp / STORE_FILE, {**meta, "shards": shards})


def _move_into_place(tmp: Path, path: Path, fingerprint: str) -> None:
    """Rename the finished folder; if another process got there first, keep its store."""
    if path.exists() and not _is_complete(path, fingerprint):
        shutil.rmtree(path)  # a folder that is not a finished store (copied, hand-made)
    try:
        os.rename(tmp, path)
    except OSError:
        if not _is_complete(path, fingerprint):
            raise
        logger.info("Trunk feature store %s was finished by another process first; using it", path)
        shutil.rmtree(tmp, ignore_errors=True)


def _build(model, scanned, start_block, path, tmp, fingerprint, options, group) -> np.ndarray:
    """Every rank of `group`: compute its share into `tmp`; the group's first rank joins and
    renames. Passes per row."""
    rank, world = group.rank, group.world
    buckets = length_buckets(scanned.lengths.tolist(), max_tokens=options["batch_tokens"])
    writer = _ShardWriter(tmp, rank, options["shard_bytes"], trunk_of(model).config.emb_dim)
    quiet = options["disable_tqdm"] or rank > 0
    computed = _compute_shards(model, scanned, buckets[rank::world], start_block, writer, quiet)
    write_json(tmp / f"rank{rank:03d}.json", {"shards": writer.names})
    group.barrier()
    outcome = None
    if rank == 0:
        meta = {"version": STORE_VERSION, "fingerprint": fingerprint, "start_block": start_block,
                "emb_dim": trunk_of(model).config.emb_dim, "dtype": "float32", "processes": world,
                "num_examples": len(scanned.lengths), "num_tokens": scanned.num_tokens}  # fmt: skip
        try:
            _finalize(tmp, scanned, world, meta)
            _move_into_place(tmp, path, fingerprint)
        except Exception as err:  # every rank must hear of it, not wait forever
            outcome = f"trunk feature store {path} could not be built: {err}"
    outcome = group.share(outcome)
    if outcome is not None:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(outcome)
    return computed


def open_trunk_store(
    model: torch.nn.Module,
    dataset: Any,
    start_block: int,
    cache_dir: str | os.PathLike | None = None,
    *,
    batch_tokens: int = 8192,
    shard_bytes: int = 128 * 2**20,
    disable_tqdm: bool = False,
) -> TrunkFeatureStore | None:
    """The store of `model`'s states entering `start_block` for every example of `dataset`.

    Call it on every rank. Reuses the store with the same fingerprint under `cache_dir`
    (default `default_store_root()`), else builds it (each rank a share, rank 0 joins them);
    returns None, with a log line, when the disk cannot hold it. `dataset` is a tokenized
    `Dataset` (keys: its `example_id` column, else row positions) or a `DatasetDict` (keys: row
    positions across the splits in order, unless it has `example_id`s). `batch_tokens` bounds
    a trunk batch (padded tokens), `shard_bytes` a shard file and the memory the build holds.
    """
    rank, world = _rank_and_world()
    reason = unmaterialised_reason(model, start_block)
    if reason is not None:
        logger.warning("Trunk feature store off: %s; the frozen blocks run in every epoch", reason)
        return None
    scanned = scan_dataset(dataset)
    fingerprint = trunk_fingerprint(model, start_block, scanned.digest)
    root = Path(cache_dir).expanduser() if cache_dir else default_store_root()
    path = Path(_from_rank0(str(root / fingerprint), world))  # rank 0's, whatever our cache
    needed = scanned.num_tokens * trunk_of(model).config.emb_dim * FLOAT32_BYTES
    needed += 32 * len(scanned.lengths)
    options = dict(batch_tokens=batch_tokens, shard_bytes=shard_bytes, disable_tqdm=disable_tqdm)
    # Rank 0 holds the store's lock from the plan to the rename: a second process that wants
    # the same store waits for it, then reuses it.
    with output_lock(path, "the trunk feature store", wait=True) if rank == 0 else nullcontext():
        plan = _from_rank0(_plan(path, fingerprint, needed) if rank == 0 else None, world)
        if plan["action"] == "skip":
            return None
        seen = _gathered(_sees(path, fingerprint, plan), world)
        groups = _storage_groups(
            seen, _gathered(os.environ.get("GROUP_RANK") or socket.gethostname(), world)
        )
        if len(groups) > 1 and rank == 0:
            logger.info(
                "Trunk feature store: ranks %s do not see %s (node-local disks): it is built "
                "once per node, %d copies", [r for r, s in enumerate(seen) if not s], path,
                len(groups),
            )  # fmt: skip
        if rank in groups[0].ranks:
            store = _open_planned(
                model, scanned, start_block, path, fingerprint, plan, options, groups[0]
            )
    for group in groups[1:]:  # this node's own copy, under this node's lock
        if rank in group.ranks:
            leader = rank == group.ranks[0]
            with (
                output_lock(path, "the trunk feature store", wait=True) if leader else nullcontext()
            ):
                plan = group.share(_plan(path, fingerprint, needed) if leader else None)
                store = None
                if plan["action"] != "skip":
                    store = _open_planned(
                        model, scanned, start_block, path, fingerprint, plan, options, group
                    )
    if not all(_gathered(store is not None, world)):  # the ranks must agree
        if store is not None:
            store.close()
        logger.warning("Trunk feature store off: a node has no room for it (see its log)")
        return None
    return store


def _open_planned(
    model: torch.nn.Module,
    scanned: ScannedData,
    start_block: int,
    path: Path,
    fingerprint: str,
    plan: dict[str, Any],
    options: dict[str, Any],
    group: _Group,
) -> TrunkFeatureStore:
    """`open_trunk_store` once `group`'s first rank has planned: reuse or build the store."""
    world = group.world
    emb_dim, n_tokens = trunk_of(model).config.emb_dim, scanned.num_tokens
    if plan["action"] == "reuse":
        logger.info("Trunk feature store: reusing %s (%d examples)", path, len(scanned.lengths))
        return TrunkFeatureStore(path)
    logger.info(
        "Trunk feature store: computing blocks below %d once for %d examples: %d tokens x %d x "
        "4 bytes = %.3f GB, into %s (%d process%s)",
        start_block, len(scanned.lengths), n_tokens, emb_dim,
        n_tokens * emb_dim * FLOAT32_BYTES / 1e9, path, world,
        "es" if world > 1 else "",
    )  # fmt: skip
    started = time.perf_counter()
    try:
        computed = _build(
            model, scanned, start_block, path, Path(plan["tmp"]), fingerprint, options, group
        )
    except BaseException:
        if world == 1:  # with several ranks, a failed rank takes the job down (torchrun)
            shutil.rmtree(plan["tmp"], ignore_errors=True)
        raise
    logger.info("Trunk feature store: %s written in %.1f s", path, time.perf_counter() - started)
    store = TrunkFeatureStore(path)
    store.computed_per_example[np.searchsorted(store.example_ids, scanned.example_ids)] = computed
    return store


def measure_store(
    model: torch.nn.Module,
    dataset: Any,
    start_block: int,
    cache_dir: str | os.PathLike,
    batch_size: int = 8,
) -> dict[str, float]:
    """Build (or reuse) a store and read every example once in batches: figures for a table.

    Peak resident memory is the process's high-water mark so far (`ru_maxrss`); run one size
    per process to compare sizes.
    """
    import resource  # Unix only, and only the benchmark needs it

    started = time.perf_counter()
    store = open_trunk_store(model, dataset, start_block, cache_dir, disable_tqdm=True)
    if store is None:
        raise DataError(f"{cache_dir}: not enough free disk space for the trunk feature store")
    build_seconds = time.perf_counter() - started
    started = time.perf_counter()
    ids = store.example_ids
    for first in range(0, len(ids), batch_size):
        store.read(ids[first : first + batch_size])
    read_seconds = time.perf_counter() - started
    store.close()
    return {
        "examples": len(store),
        "tokens": int(store.meta["num_tokens"]),
        "examples_computed": store.examples_computed,
        "build_seconds": build_seconds,
        "read_seconds": read_seconds,
        "store_bytes": store.nbytes_on_disk(),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
