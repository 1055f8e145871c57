"""The scale benchmark: its data, one measured run, the table, the targets and the torchrun check
(the full measurements are run by hand, not in CI)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hf_spam.benchmarks import scale as sb
from hf_spam.benchmarks import synthetic
from hf_spam.benchmarks.scale import RunRecord, ScaleArguments
from hf_spam.cli import main
from hf_spam.reporting import format_table

TINY = dict(emb_dim=32, n_heads=4, epochs=2)


def test_lengths_are_imdb_like_log_normal():
    lengths = synthetic.synthetic_lengths(20_000, 300)
    assert lengths.min() >= 20 and lengths.max() <= 1024
    # Unclipped log-normal(mu, sigma) has mean exp(mu + sigma^2 / 2) = 300; the clip at 1024
    # removes ~3% of the mass from the top, so the sample mean sits a little below 300.
    assert 260 < lengths.mean() < 310
    assert np.median(lengths) < lengths.mean()  # skewed like review lengths


def test_synthetic_splits_are_the_imdb_fractions(tmp_path):
    data = synthetic.synthetic_dataset(50, 30)
    assert {s: len(d) for s, d in data.items()} == {"train": 35, "validation": 5, "test": 10}
    row = data["train"][0]
    assert len(row["input_ids"]) == len(row["attention_mask"]) and row["label"] in (0, 1)
    assert row["label"] == row["input_ids"][0] % 2


@pytest.mark.parametrize("sizes", ["a", "1000,x", "0", ",", "-5"])
def test_sizes_that_are_not_numbers_of_texts_name_the_flag(sizes, capsys):
    assert main(["benchmark", "--scale", "--sizes", sizes]) == 2
    assert capsys.readouterr().err == (
        f"error: --sizes {sizes}: expected positive numbers of texts, e.g. 1000,5000\n"
    )


def test_quick_is_reduced():
    args = ScaleArguments(quick=True)
    assert (args.size_list, args.epochs, args.torchrun_size) == ([50, 200], 1, 50)
    assert ScaleArguments().size_list == [1000, 5000, 20000, 50000]
    assert ScaleArguments(quick=True, sizes="10,20").size_list == [10, 20]


def test_one_run_then_a_second_run_on_the_same_store(tmp_path, tiktoken_available):
    """The rows' function in-process at a tiny width: the first run computes each example's
    trunk once (store and block-0 hook agree), the second computes none; the row has every
    column."""
    data = str(synthetic.save_synthetic(tmp_path / "data", 40, 12))
    args, cache = ScaleArguments(**TINY), str(tmp_path / "stores")
    first = sb.train_once(args, data, str(tmp_path / "one"), cache, **sb.ROWS["build"].options)
    assert first.store_used and first.examples == 40 and first.block0_rows == 40
    assert first.computed_per_example == [1] * 40 and len(first.epoch_seconds) == 2
    assert first.store_bytes > first.tokens * 32 * 4
    second = sb.train_once(args, data, str(tmp_path / "two"), cache, **sb.ROWS["reuse"].options)
    assert second.computed_per_example == [0] * 40 and second.block0_rows == 0
    row = sb.size_row(40, first, second)
    assert row["trunk/example"] == "1 (hook 1)" and row["2nd run trunk/example"] == "0 (hook 0)"
    header = format_table([row]).splitlines()[0]
    for column in ("texts", "peak RSS MB", "store GB", "trunk pass s", "s/epoch",
                   "trunk/example", "2nd run trunk/example"):  # fmt: skip
        assert column in header


def _records(counts: list[list[int]], loss: float = 0.5) -> list[RunRecord]:
    metrics = {"test_loss": loss, "test_accuracy": 0.75}
    return [RunRecord(rank=r, world_size=len(counts), computed_per_example=c,
                      block0_rows=sum(c), metrics=metrics) for r, c in enumerate(counts)]  # fmt: skip


def test_torchrun_check_needs_each_example_exactly_once_across_ranks():
    weights = {"w": torch.ones(3)}
    one = _records([[1, 1, 1, 1]])[0]
    ok = sb.torchrun_check(_records([[1, 0, 1, 0], [0, 1, 0, 1]]), one, (weights, weights))
    assert ok["exactly once"] and ok["equal to 1 process"]
    assert ok["trunk/example over ranks"] == "1-1"
    twice = sb.torchrun_check(_records([[1, 1, 1, 0], [0, 1, 0, 1]]), one, (weights, weights))
    assert not twice["exactly once"] and twice["trunk/example over ranks"] == "1-2"


def test_torchrun_check_compares_weights_and_accuracies():
    one = _records([[1, 1]])[0]
    two = _records([[1, 0], [0, 1]])
    near = {"w": torch.ones(3) + 1e-6}
    assert sb.torchrun_check(two, one, ({"w": torch.ones(3)}, near))["equal to 1 process"]
    far = {"w": torch.ones(3) + 1e-2}
    assert not sb.torchrun_check(two, one, ({"w": torch.ones(3)}, far))["equal to 1 process"]
    off = _records([[1, 0], [0, 1]], loss=0.6)
    check = sb.torchrun_check(off, one, ({"w": torch.ones(3)},) * 2)
    assert check["equal to 1 process"] and check["max |eval loss diff|"] == "1.00e-01"
    off[0].metrics = {"test_loss": 0.5, "test_accuracy": 0.7}
    assert not sb.torchrun_check(off, one, ({"w": torch.ones(3)},) * 2)["equal to 1 process"]


def test_targets_say_met_or_not():
    def row(texts, rss, epoch, first="1 (hook 1)", again="0 (hook 0)"):
        return {"texts": texts, "peak RSS MB": rss, "s/epoch": epoch, "trunk/example": first,
                "2nd run trunk/example": again}  # fmt: skip

    lines = sb.targets([row(1000, 1000, 10.0), row(50000, 1400, 540.0)], None)
    assert "1.40x (target <= 1.5x): met" in lines[0]
    assert "54.0x (linear: 50x +- 20%): met" in lines[1]
    assert lines[2] == "1 trunk pass per example per size: met; 0 on the second run: met"
    lines = sb.targets([row(1000, 1000, 10.0), row(50000, 2000, 700.0, again="1 (hook 1)")], None)
    assert "NOT met" in lines[0] and "NOT met" in lines[1] and lines[2].endswith("NOT met")


@pytest.mark.parametrize("table", [["--scale"], ["scale"]])
def test_cli_refuses_an_unknown_scale_flag(table, capsys):
    assert main(["benchmark", *table, "--sizez", "10"]) == 2
    assert capsys.readouterr().err == ("error: unknown flag --sizez; did you mean --sizes?\n")


@pytest.mark.slow  # fresh interpreters: 2 sizes x 2 runs, then 1 and 2 processes
def test_quick_scale_end_to_end_at_a_tiny_width(tmp_path, tiktoken_available):
    args = ScaleArguments(quick=True, sizes="30,60", torchrun_size=30, emb_dim=32, n_heads=4,
                          mean_tokens=12)  # fmt: skip
    rows, check = sb.run_scale(args, tmp_path)
    assert [r["trunk/example"] for r in rows] == ["1 (hook 1)"] * 2
    assert [r["2nd run trunk/example"] for r in rows] == ["0 (hook 0)"] * 2
    assert check["exactly once"] and check["equal to 1 process"], check
    assert all(int(r["peak RSS MB"]) > 0 for r in rows)  # each run's own process, measured
