"""The trunk feature store: exact states, one trunk pass per example, safe on disk."""

from __future__ import annotations

import gc
import logging
import os
import shutil
import threading
import warnings
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict
from helpers import hold_lock

from hf_spam import GPTConfig, GPTForSequenceClassification
from hf_spam.errors import DataError
from hf_spam.features import (
    TrunkFeatureStore,
    measure_store,
    open_trunk_store,
    scan_dataset,
    trunk_fingerprint,
)

CONFIG = dict(vocab_size=50257, context_length=64, emb_dim=32, n_heads=4, n_layers=3)
START = 2
PAD = 50256


def make_model(seed: int = 0) -> GPTForSequenceClassification:
    torch.manual_seed(seed)
    return GPTForSequenceClassification(GPTConfig(**CONFIG, num_labels=2)).eval()


def make_dataset(n: int = 300, padded: bool = True, seed: int = 0) -> Dataset:
    """Random token rows of 1..40 tokens; `padded` right-pads them all like --padding
    longest_train (attention_mask marks the real tokens), else ragged rows."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 41, size=n)
    width = int(lengths.max())
    rows = {"input_ids": [], "attention_mask": [], "label": []}
    for length in lengths:
        ids = rng.integers(0, PAD, size=length).tolist()
        pad = width - length if padded else 0
        rows["input_ids"].append(ids + [PAD] * pad)
        rows["attention_mask"].append([1] * int(length) + [0] * pad)
        rows["label"].append(int(rng.integers(0, 2)))
    return Dataset.from_dict(rows)


def pad_batch(dataset: Dataset, rows: list[int], left: bool = False):
    """A batch as a collator would make it (right-padded, or left-padded when asked)."""
    real = [
        [t for t, m in zip(ids, mask, strict=True) if m]
        for ids, mask in zip(
            dataset[rows]["input_ids"], dataset[rows]["attention_mask"], strict=True
        )
    ]
    width = max(len(r) for r in real)
    input_ids = torch.full((len(rows), width), PAD)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, ids in enumerate(real):
        span = slice(width - len(ids), width) if left else slice(0, len(ids))
        input_ids[i, span], mask[i, span] = torch.tensor(ids), 1
    return input_ids, mask


class TrunkCounter:
    """Counts examples entering the first block: an independent count of trunk passes."""

    def __init__(self, model: GPTForSequenceClassification, fail_at_call: int | None = None):
        self.rows, self.calls, self.fail_at_call = 0, 0, fail_at_call
        self.handle = model.gpt.trf_blocks[0].register_forward_pre_hook(self)

    def __call__(self, module, args):
        self.calls += 1
        if self.fail_at_call is not None and self.calls == self.fail_at_call:
            raise KeyboardInterrupt("killed mid-build")
        self.rows += args[0].shape[0]


@pytest.fixture(scope="module")
def model():
    return make_model()


@pytest.fixture(scope="module")
def dataset():
    return make_dataset()


@pytest.fixture(scope="module")
def built(model, dataset, tmp_path_factory):
    """One store, built with the trunk counted."""
    root = tmp_path_factory.mktemp("trunk-store")
    counter = TrunkCounter(model)
    store = open_trunk_store(model, dataset, START, root, shard_bytes=64 * 2**10)
    counter.handle.remove()
    return namedtuple("Built", "store root rows")(store, root, counter.rows)


def test_features_equal_the_trunk_run_directly(model, dataset, built):
    store = built.store
    assert len(store.meta["shards"]) > 1  # small shards: examples spread over several files
    for first in range(0, len(dataset), 64):
        rows = list(range(first, min(first + 64, len(dataset))))
        batch = dataset[rows]
        input_ids, mask = torch.tensor(batch["input_ids"]), torch.tensor(batch["attention_mask"])
        with torch.no_grad():
            expected = model.gpt(input_ids=input_ids, attention_mask=mask, stop_block=START)
        got = store.read(rows, mask)
        assert got.dtype == torch.float32 and got.shape == (len(rows), mask.shape[1], 32)
        real = mask.bool()
        torch.testing.assert_close(got[real], expected.last_hidden_state[real], atol=1e-6, rtol=0)
        assert not got[~real].any()


def test_each_example_runs_through_the_trunk_once(dataset, built):
    assert built.rows == len(dataset)  # the hook's count, independent of the store's own
    assert built.store.examples_computed == len(dataset)
    assert (built.store.computed_per_example == 1).all()


@pytest.mark.parametrize("left", [False, True])
def test_logits_from_the_store_equal_the_uncached_forward(model, dataset, built, left):
    store = built.store
    for first in range(0, len(dataset), 8 * 7):
        rows = list(range(first, min(first + 8, len(dataset))))
        input_ids, mask = pad_batch(dataset, rows, left=left)
        with torch.no_grad():
            expected = model(input_ids=input_ids, attention_mask=mask).logits
            states = store.block_inputs(model, input_ids, mask, torch.tensor(rows))
            got = model(block_inputs=states, attention_mask=mask, start_block=START).logits
        assert store.start_block == START
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_a_half_precision_model_reads_the_store_in_its_dtype(dataset, built, dtype):
    """--bf16_full_eval / --fp16_full_eval cast the model after the store was built in fp32."""
    half = make_model().to(dtype)
    rows = list(range(16))
    input_ids, mask = pad_batch(dataset, rows)
    with torch.no_grad():
        expected = half(input_ids=input_ids, attention_mask=mask).logits
        states = built.store.block_inputs(half, input_ids, mask, torch.tensor(rows))
        got = half(block_inputs=states, attention_mask=mask, start_block=START).logits
    assert states.dtype == dtype and got.dtype == dtype
    torch.testing.assert_close(got.float(), expected.float(), atol=0.05, rtol=0.02)


def test_weights_not_materialised_turn_the_store_off(dataset, tmp_path, caplog):
    with torch.device("meta"):
        placeholder = GPTForSequenceClassification(GPTConfig(**CONFIG, num_labels=2))
    with caplog.at_level(logging.WARNING, logger="hf_spam.features"):
        assert open_trunk_store(placeholder, dataset, START, tmp_path) is None
    assert "Trunk feature store off: tok_emb.weight is not materialised" in caplog.text
    assert not any(tmp_path.iterdir())


def test_same_fingerprint_reuses_the_store_and_computes_nothing(model, dataset, built, caplog):
    counter = TrunkCounter(model)
    with caplog.at_level(logging.INFO, logger="hf_spam.features"):
        again = open_trunk_store(model, dataset, START, built.root)
    counter.handle.remove()
    assert counter.rows == 0 and again.examples_computed == 0
    assert again.path == built.store.path
    assert f"reusing {built.store.path}" in caplog.text
    torch.testing.assert_close(again.read(range(20)), built.store.read(range(20)), atol=0, rtol=0)


def test_fingerprint_follows_frozen_weights_data_and_start_block(model, dataset):
    digest = scan_dataset(dataset).digest
    base = trunk_fingerprint(model, START, digest)
    assert trunk_fingerprint(model, START, digest) == base
    assert trunk_fingerprint(model, START - 1, digest) != base
    other_row = dataset.map(lambda row, i: {"input_ids": [7] + row["input_ids"][1:]} if i == 5
                            else {}, with_indices=True)  # fmt: skip
    assert trunk_fingerprint(model, START, scan_dataset(other_row).digest) != base
    padding_only = dataset.map(lambda row: {"input_ids": [t if m else 0 for t, m in zip(
        row["input_ids"], row["attention_mask"], strict=True)]})  # fmt: skip
    assert scan_dataset(padding_only).digest == digest  # only real tokens count
    changed = make_model()
    with torch.no_grad():
        changed.gpt.trf_blocks[START].att.W_query.weight.add_(1.0)  # above the trunk
        changed.out_head.weight.add_(1.0)
    assert trunk_fingerprint(changed, START, digest) == base
    with torch.no_grad():
        changed.gpt.trf_blocks[START - 1].norm2.shift.add_(1e-3)  # inside it
    assert trunk_fingerprint(changed, START, digest) != base
    changed = make_model()
    changed.gpt.config.n_heads = 8  # same weights, different attention
    assert trunk_fingerprint(changed, START, digest) != base


def test_killed_build_leaves_nothing_a_later_run_would_trust(model, dataset, tmp_path):
    counter = TrunkCounter(model, fail_at_call=3)
    with pytest.raises(KeyboardInterrupt, match="killed mid-build"):
        open_trunk_store(model, dataset, START, tmp_path, shard_bytes=16 * 2**10)
    counter.handle.remove()
    assert list(tmp_path.iterdir()) == []  # neither the store nor its temporary folder
    counter = TrunkCounter(model)
    store = open_trunk_store(model, dataset, START, tmp_path)
    counter.handle.remove()
    assert counter.rows == len(dataset) and store.examples_computed == len(dataset)


def test_folders_of_stopped_builds_are_removed_at_the_next_start(model, tmp_path, caplog):
    """A build holds the store's lock, so a temporary folder found while holding it belongs to
    no live build: it is removed at once, however recent. Another store's folder is kept."""
    digest = scan_dataset(make_dataset(12)).digest
    name = trunk_fingerprint(model, START, digest)
    stopped = tmp_path / f".{name}.tmp-k2x9_a"
    other = tmp_path / f".{name}x.tmp-k2x9_a"  # the temporary of another fingerprint
    for folder in (stopped, other):
        folder.mkdir()
        (folder / "rank000-00000.safetensors").write_bytes(b"partial")
    with caplog.at_level(logging.INFO, logger="hf_spam.files"):
        store = open_trunk_store(model, make_dataset(12), START, tmp_path)
    assert not stopped.exists() and other.exists()
    assert f"removed {stopped.name}, left by a writer that was stopped" in caplog.text
    assert store.path == tmp_path / name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, other.name])  # no lock


def test_a_second_builder_waits_for_the_first_then_reuses_its_store(
    model, dataset, tmp_path, caplog
):
    """Two runs wanting the same store: the second waits on the lock (a log line names the
    holder's process id), then reuses the store instead of computing it again."""
    digest = scan_dataset(dataset).digest
    path = tmp_path / trunk_fingerprint(model, START, digest)
    holder = hold_lock(path)
    try:
        released = threading.Timer(1.0, holder.stdin.close)
        released.start()
        counter = TrunkCounter(model)
        with caplog.at_level(logging.INFO, logger="hf_spam"):
            open_trunk_store(model, dataset, START, tmp_path)
        counter.handle.remove()
    finally:
        holder.kill()
        holder.wait()
    assert f"is being written by process {holder.pid}" in caplog.text
    assert "waiting for it" in caplog.text
    assert counter.rows == len(dataset)  # the holder built nothing: this process did, once


def test_not_enough_disk_space_falls_back_to_no_store(
    model, dataset, tmp_path, monkeypatch, caplog
):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**6, 10**6 - 1000, 1000))
    counter = TrunkCounter(model)
    with caplog.at_level(logging.INFO, logger="hf_spam.features"):
        assert open_trunk_store(model, dataset, START, tmp_path) is None
    counter.handle.remove()
    assert counter.rows == 0 and list(tmp_path.iterdir()) == []
    assert "Trunk feature store off: it needs 0.00" in caplog.text
    assert f"{tmp_path} has 0.00 GB free" in caplog.text


def _live_tensor_bytes() -> int:
    gc.collect()
    with warnings.catch_warnings():  # isinstance() on deprecated torch objects warns
        warnings.simplefilter("ignore")
        tensors = [obj for obj in gc.get_objects() if isinstance(obj, torch.Tensor)]
    return sum(t.untyped_storage().nbytes() for t in tensors)


def test_reading_keeps_no_states_in_memory(built, dataset):
    """A dict cache ends an epoch holding every example's states; the store holds none."""
    store = built.store
    stored = store.meta["num_tokens"] * 32 * 4
    before = _live_tensor_bytes()
    for _epoch in range(2):
        for first in range(0, len(dataset), 8):
            batch = store.read(range(first, min(first + 8, len(dataset))))
            assert batch.shape[0] > 0
    del batch
    assert _live_tensor_bytes() - before < stored / 20
    assert not any(isinstance(v, (torch.Tensor, dict)) and v for k, v in vars(store).items()
                   if k not in ("meta", "_files"))  # fmt: skip


def test_wrong_batches_are_refused_with_the_example_named(built, dataset):
    store = built.store
    input_ids, mask = pad_batch(dataset, [3, 4])
    mask[0, 0] = 0
    with pytest.raises(DataError, match="example_id 3 has .* tokens in the batch but"):
        store.read([3, 4], mask)
    with pytest.raises(
        DataError, match=f"example_id 999 is not in the trunk feature store {store.path}"
    ):
        store.read([3, 999])


@pytest.mark.parametrize("damaged", ["index.safetensors", "rank000-00000.safetensors"])
def test_a_damaged_store_file_is_named(built, model, dataset, tmp_path, damaged):
    """A truncated index or shard of a finished store: the file is named (safetensors' own
    error names none, and the command line read it as a failed write)."""
    from hf_spam.cli import describe

    copy = tmp_path / built.store.path.name
    shutil.copytree(built.store.path, copy)
    (copy / damaged).write_bytes((copy / damaged).read_bytes()[:20])
    with pytest.raises(DataError) as info:
        open_trunk_store(model, dataset, START, tmp_path)  # the same fingerprint: reused
    status, message = describe(info.value)
    assert status == 1
    assert message.startswith(f"{copy / damaged}: damaged trunk feature store file (")
    assert message.endswith(f"); delete {copy} to build the store again")


def test_dataset_dict_and_example_ids_are_the_keys(model, tmp_path):
    splits = DatasetDict(
        train=make_dataset(20, seed=1), test=make_dataset(10, padded=False, seed=2)
    )
    store = open_trunk_store(model, splits, START, tmp_path)
    assert list(store.example_ids) == list(range(30))  # positions across splits, in order
    with_ids = splits["test"].add_column("example_id", list(range(100, 110)))
    by_id = open_trunk_store(model, with_ids, START, tmp_path)
    # Other batches, same states up to float rounding.
    torch.testing.assert_close(by_id.read([100, 109]), store.read([20, 29]), atol=1e-6, rtol=0)


def test_default_location_is_under_the_datasets_cache(model, tmp_path, monkeypatch):
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    store = open_trunk_store(model, make_dataset(12), START)
    assert store.path.parent == tmp_path / "hf-datasets" / "hf_spam-trunk-features"


def test_measure_store_reports_figures(model, tmp_path):
    figures = measure_store(model, make_dataset(40), START, tmp_path)
    assert figures["examples"] == 40 and figures["examples_computed"] == 40
    assert figures["store_bytes"] >= figures["tokens"] * 32 * 4
    assert figures["peak_rss_bytes"] > 0 and figures["build_seconds"] > 0


def _rank(rank: int, world: int, init_file: str, root: str, out: str) -> None:
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world
    )
    store = open_trunk_store(make_model(), make_dataset(), START, root, disable_tqdm=True)
    np.save(Path(out) / f"computed-{rank}.npy", store.computed_per_example)
    torch.save(store.read(range(300)), Path(out) / f"states-{rank}.pt")
    (Path(out) / f"path-{rank}.txt").write_text(str(store.path))
    torch.distributed.destroy_process_group()


@pytest.mark.slow  # two fresh interpreters importing torch
def test_two_processes_share_the_work_and_read_one_store(built, tmp_path):
    root, out = tmp_path / "root", tmp_path / "out"
    out.mkdir()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.multiprocessing.spawn(
        _rank, args=(2, str(tmp_path / "init"), str(root), str(out)), nprocs=2, join=True
    )
    computed = [np.load(out / f"computed-{rank}.npy") for rank in range(2)]
    assert (computed[0] + computed[1] == 1).all() and computed[0].sum() > 0 < computed[1].sum()
    paths = {(out / f"path-{rank}.txt").read_text() for rank in range(2)}
    assert paths == {str(root / built.store.path.name)}  # same fingerprint as one process
    assert TrunkFeatureStore(paths.pop()).meta["processes"] == 2
    expected = built.store.read(range(300))
    for rank in range(2):
        states = torch.load(out / f"states-{rank}.pt")
        torch.testing.assert_close(states, expected, atol=1e-6, rtol=0)


def _rank_with_own_cache(rank: int, world: int, init_file: str, tmp: str, hidden: bool) -> None:
    """One rank whose HF datasets cache is its own (a node-local disk stands in); `hidden`:
    rank 1 cannot see rank 0's folders, as on another node."""
    import datasets.config

    from hf_spam.features import build

    datasets.config.HF_DATASETS_CACHE = str(Path(tmp) / f"cache-{rank}")
    if hidden and rank == 1:
        build._sees = lambda *args: False
    logging.basicConfig(level=logging.INFO, filename=str(Path(tmp) / f"log-{rank}.txt"))
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world
    )
    store = open_trunk_store(make_model(), make_dataset(), START, disable_tqdm=True)
    torch.save(store.read(range(300)), Path(tmp) / f"states-{rank}.pt")
    (Path(tmp) / f"path-{rank}.txt").write_text(str(store.path))
    torch.distributed.destroy_process_group()


@pytest.mark.slow  # two fresh interpreters importing torch
@pytest.mark.parametrize("hidden", [False, True], ids=["shared-disk", "node-local-disk"])
def test_ranks_with_their_own_caches_read_rank_0s_store(built, tmp_path, hidden):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.multiprocessing.spawn(
        _rank_with_own_cache, args=(2, str(tmp_path / "init"), str(tmp_path), hidden), nprocs=2
    )
    paths = {(tmp_path / f"path-{rank}.txt").read_text() for rank in range(2)}
    assert paths == {str(tmp_path / "cache-0" / "hf_spam-trunk-features" / built.store.path.name)}
    assert not (tmp_path / "cache-1").exists()
    log = (tmp_path / "log-0.txt").read_text()
    assert ("built once per node, 2 copies" in log) == hidden
    expected = built.store.read(range(300))
    for rank in range(2):
        states = torch.load(tmp_path / f"states-{rank}.pt")
        torch.testing.assert_close(states, expected, atol=1e-6, rtol=0)
