"""Reading the trunk feature store, and what it is keyed by (see `hf_spam.features`).

Storage: safetensors shards plus an index, not an Arrow column. A shard is one `(tokens,
emb_dim)` float32 tensor of whole examples, so an example is one contiguous byte range read
straight into the output batch; the index (example id -> shard, first row, length) is four small
arrays. An Arrow `list<float>` column would need `Dataset.map` over a length-sorted copy and a row
formatter per read for the same bytes. Reads use `readinto` at the offsets in the safetensors
header, not `safe_open`'s mmap: pages touched through a mapping count as the process's resident
memory.

Keyed by a fingerprint of the frozen parameters' bytes (tok_emb, pos_emb, blocks below
`start_block`), the tokenized data (real tokens, example ids), the configuration fields the trunk
reads and `start_block`; a later run with the same fingerprint reuses the store.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file as load_numpy

from ..errors import DataError
from ..model.modeling import is_right_padded

STORE_VERSION = 1
STORE_FILE = "store.json"  # written last: a folder without it is not a store
INDEX_FILE = "index.safetensors"
FLOAT32_BYTES = 4
MAX_OPEN_SHARDS = 64  # stay far below the usual limit of 1024 open files
#: Configuration fields that change what the blocks below `start_block` compute.
TRUNK_CONFIG_FIELDS = ("emb_dim", "n_heads", "context_length", "drop_rate", "qkv_bias",
                       "layer_norm_eps", "disable_causal_mask", "_attn_implementation")  # fmt: skip


# ------------------------------------------------------------------------------------------------
# What the store is keyed by
# ------------------------------------------------------------------------------------------------


@dataclass
class ScannedData:
    """One pass over the tokenized data: ids, real-token counts and a digest of both + tokens."""

    dataset: Any
    example_ids: np.ndarray
    lengths: np.ndarray
    digest: str

    @property
    def num_tokens(self) -> int:
        return int(self.lengths.sum())


def scan_dataset(dataset: Any, batch_size: int = 4096) -> ScannedData:
    """Example ids (the `example_id` column, else row positions), real-token counts, digest.

    A `DatasetDict` counts as its splits in order (positions run across splits, as the
    trainer's `example_id`s do).
    """
    if isinstance(dataset, Mapping):
        from datasets import concatenate_datasets

        dataset = concatenate_datasets(list(dataset.values()))
    if "input_ids" not in dataset.column_names:
        raise DataError(f"trunk features need an input_ids column; got {dataset.column_names}")
    columns = [
        c for c in ("input_ids", "attention_mask", "example_id") if c in dataset.column_names
    ]
    digest = hashlib.blake2b(digest_size=16)
    ids, lengths, row = [], [], 0
    for table in dataset.select_columns(columns).with_format("arrow").iter(batch_size):
        tokens = table["input_ids"].combine_chunks()
        values = tokens.flatten().to_numpy().astype(np.int64)
        ends = np.cumsum(tokens.value_lengths().to_numpy())
        if "attention_mask" in columns:
            real = table["attention_mask"].combine_chunks().flatten().to_numpy().astype(bool)
            values = values[real]
            counts = np.concatenate([[0], np.cumsum(real)])[ends]
            batch_lengths = np.diff(np.concatenate([[0], counts]))
        else:
            batch_lengths = np.diff(np.concatenate([[0], ends]))
        if "example_id" in columns:
            batch_ids = table["example_id"].to_numpy().astype(np.int64)
        else:
            batch_ids = np.arange(row, row + len(table), dtype=np.int64)
        row += len(table)
        for array in (batch_ids, batch_lengths.astype(np.int64), values):
            digest.update(array.tobytes())
        ids.append(batch_ids)
        lengths.append(batch_lengths.astype(np.int64))
    example_ids = np.concatenate(ids) if ids else np.zeros(0, np.int64)
    unique, counts = np.unique(example_ids, return_counts=True)
    if (counts > 1).any():
        raise DataError(f"example_id {int(unique[counts > 1][0])} occurs more than once")
    empty = np.zeros(0, np.int64)
    return ScannedData(dataset, example_ids, np.concatenate(lengths) if lengths else empty,
                       digest.hexdigest())  # fmt: skip


def trunk_of(model: torch.nn.Module) -> torch.nn.Module:
    """The `GPTModel` of a classifier (or the model itself)."""
    return getattr(model, "gpt", model)


def trunk_fingerprint(model: torch.nn.Module, start_block: int, data_digest: str) -> str:
    """Hash of everything the features depend on; the store's folder name."""
    trunk = trunk_of(model)
    frozen = ("tok_emb.", "pos_emb.", *(f"trf_blocks.{i}." for i in range(start_block)))
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(trunk.state_dict().items()):
        if name.startswith(frozen):
            if hasattr(tensor, "full_tensor"):  # a DTensor shard (FSDP2): hash the whole tensor
                tensor = tensor.full_tensor()
            data = tensor.detach().cpu().contiguous().reshape(-1)
            digest.update(f"{name}:{data.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(data.view(torch.uint8).numpy().tobytes())
    settings = {field: getattr(trunk.config, field, None) for field in TRUNK_CONFIG_FIELDS}
    settings.update(start_block=start_block, dtype="float32", version=STORE_VERSION)
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    digest.update(data_digest.encode())
    return digest.hexdigest()


def unmaterialised_reason(model: torch.nn.Module, start_block: int) -> str | None:
    """Why the frozen trunk's weights cannot be read here (None when they can): ZeRO-3 keeps
    each rank's partition only (placeholders of size 0, `ds_shape`), and meta tensors (weights
    loaded later, e.g. `cpu_ram_efficient_loading`) hold no values to hash or run."""
    trunk = trunk_of(model)
    frozen = ("tok_emb.", "pos_emb.", *(f"trf_blocks.{i}." for i in range(start_block)))
    for name, param in trunk.named_parameters():
        if not name.startswith(frozen):
            continue
        if hasattr(param, "ds_shape"):
            return f"{name} is partitioned by DeepSpeed ZeRO-3"
        if param.is_meta:
            return f"{name} is not materialised (meta device)"
    return None


def default_store_root() -> Path:
    """`<HF datasets cache>/hf_spam-trunk-features` (honours HF_HOME and HF_DATASETS_CACHE)."""
    import datasets.config

    return Path(datasets.config.HF_DATASETS_CACHE) / "hf_spam-trunk-features"


# ------------------------------------------------------------------------------------------------
# Reading
# ------------------------------------------------------------------------------------------------


def _tensor_offsets(path: Path, name: str) -> tuple[int, list[int], str]:
    """Byte offset and shape of tensor `name` in a safetensors file, from its JSON header."""
    with open(path, "rb") as handle:
        header_size = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(header_size))
    entry = header[name]
    return 8 + header_size + entry["data_offsets"][0], entry["shape"], entry["dtype"]


@contextmanager
def _damaged_store_file(path: Path) -> Iterator[None]:
    """A file of a finished store that cannot be read (truncated, overwritten): named, with the
    way out. safetensors' own error names no file and reads like a failed write."""
    try:
        yield
    except (SafetensorError, ValueError, KeyError, TypeError, IndexError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise DataError(
            f"{path}: damaged trunk feature store file ({reason}); delete {path.parent} to "
            "build the store again"
        ) from None


class TrunkFeatureStore:
    """Read side of a finished store: hidden states entering `start_block`, per example id.

    `block_inputs(model, input_ids, attention_mask, example_ids)` is `FrozenTrunkCache`'s
    interface; `read(example_ids, attention_mask, device)` is the same without a model. Nothing
    per example is kept in memory: each batch is read from disk into a fresh tensor.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        with _damaged_store_file(self.path / STORE_FILE):
            self.meta = json.loads((self.path / STORE_FILE).read_text(encoding="utf-8"))
            self.start_block: int = self.meta["start_block"]
            self.emb_dim: int = self.meta["emb_dim"]
            self.fingerprint: str = self.meta["fingerprint"]
        with _damaged_store_file(self.path / INDEX_FILE):
            index = load_numpy(str(self.path / INDEX_FILE))
            self._ids, self._shard = index["example_id"], index["shard"]
            self._start, self._length = index["start"], index["length"]
        self._offsets = []
        for name in self.meta["shards"]:
            with _damaged_store_file(self.path / name):
                offset, shape, dtype = _tensor_offsets(self.path / name, "hidden")
            if dtype != "F32" or shape[1:] != [self.emb_dim]:
                raise DataError(f"{self.path / name}: expected float32 (tokens, {self.emb_dim})")
            self._offsets.append(offset)
        self._files: dict[int, Any] = {}
        #: Trunk passes per example (order of `example_ids`) done by this process for this store.
        self.computed_per_example = np.zeros(len(self._ids), dtype=np.int64)

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def example_ids(self) -> np.ndarray:
        return self._ids

    @property
    def examples_computed(self) -> int:
        """How many examples' trunk this process ran to build the store (0 when reused)."""
        return int(self.computed_per_example.sum())

    def nbytes_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())

    def _positions(self, example_ids: Any) -> np.ndarray:
        ids = np.asarray(torch.as_tensor(example_ids).cpu(), dtype=np.int64).reshape(-1)
        pos = np.searchsorted(self._ids, ids).clip(max=max(len(self._ids) - 1, 0))
        missing = ids[self._ids[pos] != ids] if len(self._ids) else ids
        if len(missing):
            raise DataError(
                f"example_id {int(missing[0])} is not in the trunk feature store {self.path} "
                f"({len(self)} examples): it was built for other data"
            )
        return pos

    def _read_into(self, pos: int, out: torch.Tensor) -> None:
        shard = int(self._shard[pos])
        if shard not in self._files:
            if len(self._files) >= MAX_OPEN_SHARDS:
                self.close()
            name = self.meta["shards"][shard]
            self._files[shard] = open(self.path / name, "rb", buffering=0)  # noqa: SIM115
        handle = self._files[shard]
        handle.seek(self._offsets[shard] + int(self._start[pos]) * self.emb_dim * FLOAT32_BYTES)
        view = memoryview(out.numpy()).cast("B")
        done = 0
        while done < len(view):
            got = handle.readinto(view[done:])
            if not got:
                raise DataError(f"{self.path}: shard {shard} is truncated")
            done += got

    def read(
        self,
        example_ids: Any,
        attention_mask: torch.Tensor | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """`(batch, width, emb_dim)` float32 states, each example's at its real positions.

        Without `attention_mask` rows are right-padded to the longest example of the batch.
        """
        positions = self._positions(example_ids)
        lengths = self._length[positions]
        if attention_mask is None:
            width = int(lengths.max()) if len(lengths) else 0
            mask = torch.arange(width)[None, :] < torch.as_tensor(lengths)[:, None]
        else:
            mask = attention_mask.detach().cpu().bool()
            batch_lengths = mask.sum(-1).numpy()
            if (batch_lengths != lengths).any():
                row = int(np.flatnonzero(batch_lengths != lengths)[0])
                raise DataError(
                    f"example_id {int(self._ids[positions[row]])} has {batch_lengths[row]} tokens "
                    f"in the batch but {lengths[row]} in the trunk feature store {self.path}"
                )
        out = torch.zeros((len(positions), mask.shape[1], self.emb_dim), dtype=torch.float32)
        right = is_right_padded(mask) if mask.numel() else True
        for row, (pos, length) in enumerate(zip(positions, lengths, strict=True)):
            if length == 0:
                continue
            if right:  # straight into the output row
                self._read_into(pos, out[row, :length])
            else:
                states = torch.empty((int(length), self.emb_dim), dtype=torch.float32)
                self._read_into(pos, states)
                out[row][mask[row]] = states
        return out if device is None else out.to(device, non_blocking=True)

    @torch.no_grad()
    def block_inputs(
        self,
        model: torch.nn.Module,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        example_ids: torch.Tensor,
    ) -> torch.Tensor:
        """`FrozenTrunkCache.block_inputs`: states for `block_inputs=` of the classifier, in
        the dtype of the first block that reads them (a model cast by `--bf16_full_eval`,
        DeepSpeed bf16/fp16) and on the device of `input_ids`."""
        trunk = trunk_of(model)
        readers = [*trunk.trf_blocks[self.start_block :], trunk.final_norm]
        dtype = next(p.dtype for m in readers for p in m.parameters())
        states = self.read(example_ids, attention_mask)
        return states.to(device=input_ids.device, dtype=dtype, non_blocking=True)

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()

    def __getstate__(self) -> dict[str, Any]:  # open files do not cross processes
        return {**self.__dict__, "_files": {}}
