"""The printed tables keep their format: fixed records printed by the table modules against the
tables as docs/benchmarks.md's Speed and Bulk sections showed them (the command's output as printed), and the
scale tables written out: columns, alignment and number formats."""

from __future__ import annotations

import os

import pytest
import torch

from hf_spam.benchmarks import bulk, runner, scale, speed
from hf_spam.benchmarks.runner import Measured
from hf_spam.benchmarks.scale import RunRecord, ScaleArguments
from hf_spam.benchmarks.speed import SpeedArguments, SpeedRecord
from hf_spam.reporting import format_table

# docs/benchmarks.md, Speed: `python scripts/benchmark.py --dataset ../shared/data/SMSSpamCollection`.
SPEED_HEADER = "AMD EPYC (2 CPUs, fast bf16 (AMX): no), torch 2.13.0+cpu, 2 threads, epochs=5"
SPEED_TABLE = """\
run                                                          examples/s  s/epoch  s (all epochs | all texts)  peak MB  test acc  x baseline  note
-----------------------------------------------------------  ----------  -------  --------------------------  -------  --------  ----------  ---------------------------------------------------
baseline: transformers GPT-2, padded to longest, plain loop  5.5         188.1    940.7                       1990     0.8867    1.0x        padded to 120 tokens
hf_spam default (fp32)                                       55.1        19.0     94.9                        1614     0.8933    10.0x
  without length-grouped batches                             44.8        23.3     116.5                       1621     0.9100    8.1x
  without dynamic padding                                    62.1        16.8     84.2                        1755     0.8933    11.2x
  without frozen-trunk cache                                 23.9        43.7     218.6                       1266     0.8933    4.3x
  without last-token/length-bucket forward                   41.5        25.2     126.0                       1617     0.8933    7.5x
hf_spam --bf16                                               63.7        16.4     82.0                        1612     0.8933    11.5x       bf16 slower than fp32 here (no AMX)
pipeline: transformers GPT-2 (defaults)                      11.4                 26.3                        1129               1.0x        batch_size=1
pipeline: transformers GPT-2, batched                        8.7                  34.5                        1865               0.8x        batch_size=128
pipeline: hf_spam (defaults)                                 13.0                 23.1                        1215               1.1x        batch_size=1
pipeline: hf_spam, batched                                   22.8                 13.1                        1254               2.0x        batch_size=128
pipeline: hf_spam, batched, every padded position            10.3                 29.1                        1611               0.9x        batch_size=128, no length grouping in the model
pipeline: hf_spam, batched, bf16                             48.0                 6.3                         1398               4.2x        batch_size=128, bf16 slower than fp32 here (no AMX)
bulk: hf_spam                                                22.2                 13.5                        1436               1.9x        batch_size=128, length-sorted"""

# docs/benchmarks.md, Bulk prediction (an earlier measurement): `hf-spam benchmark --bulk --dataset ../shared/data/SMSSpamCollection`
# (the page showed one of the two runs of each (b) size; the second runs here are the command's).
BULK_TABLE = """\
run                                                          texts/s  s      peak RSS MB  note
-----------------------------------------------------------  -------  -----  -----------  -----------------------------------------------
(a) tiny, 100,000 texts, bulk path                           7,233    13.8   549          end to end, start-up included
(a) tiny, 100,000 texts, bulk path                           6,717    14.9   549          end to end, start-up included
(a) tiny, 100,000 texts, pipeline()                          3,525    28.4   555          end to end, start-up included
(a) tiny, 100,000 texts, pipeline()                          3,444    29.0   555          end to end, start-up included
(b) tiny, 10,000 lines, bulk path                            1,770    5.7    549          end to end, start-up included
(b) tiny, 10,000 lines, bulk path                            1,786    5.6    549          end to end, start-up included
(b) tiny, 1,000,000 lines, bulk path                         10,152   98.5   549          end to end, start-up included
(b) tiny, 1,000,000 lines, bulk path                         9,843    101.6  549          end to end, start-up included
(c) 124M, pipeline: hf_spam, batched                         33       9.0    1263         batch_size=128
(c) 124M, pipeline: hf_spam, batched, every padded position  14       21.2   1578         batch_size=128, no length grouping in the model
(c) 124M, bulk: hf_spam                                      33       9.2    1455         batch_size=128, length-sorted"""
BULK_BOUND = (  # one printed line (the page wrapped it)
    "(c) bound: 300 texts, 8,990 tokens, at least 1.42 TFLOP of matrix products; this CPU "
    "multiplies fp32 matrices at 217 GFLOP/s, so no fp32 path exceeds 46 texts/s"
)

# The scale tables of the records in `test_the_scale_tables_keep_their_format`.
SCALE_TABLE = """\
texts    tokens  peak RSS MB  store GB  trunk pass s  s/epoch  trunk/example      2nd run trunk/example
-----  --------  -----------  --------  ------------  -------  -----------------  ---------------------
 1000    294000         1446  0.90      27.5          9.8      1 (hook 1)         0 (hook 0)
50000  14474000         1459  44.47     1373.6        510.9    1 (hook 1)         0 (hook 0)
   40       500          300  off       0.0           0.4      store off; hook 2  store off; hook 1"""
TORCHRUN_TABLE = """\
texts  ranks  trunk/example over ranks  exactly once  hook rows / examples  max |weight diff|  accuracies equal  max |eval loss diff|  equal to 1 process
-----  -----  ------------------------  ------------  --------------------  -----------------  ----------------  --------------------  ------------------
    4      2  1-1                       True          4 / 4                 7.00e-05           True              1.00e-02              True"""
SCALE_TARGETS = [
    "peak RSS 50000 / 1000 texts: 1.01x (target <= 1.5x): met",
    "s/epoch 50000 / 1000 texts: 52.1x (linear: 50x +- 20%): met",
    "1 trunk pass per example per size: met; 0 on the second run: met",
    "torchrun x2: exactly once across ranks: met; equal to 1 process: met",
]


def _speed(row: str, rate: float, seconds: float, peak: float, acc=None, note="") -> SpeedRecord:
    what = speed.ROWS[row]
    kind = "train" if what.function in (speed.train_baseline, speed.train_hf_spam) else "inference"
    epochs = 5 if kind == "train" else 0
    return SpeedRecord(what.what, kind, rate, seconds, epochs, acc, peak, note)


def test_the_speed_table_prints_as_readme_shows_it():
    """The page's figures (examples/s, seconds, peak MB, accuracy, notes), the ratios and seconds
    per epoch worked out by the table: the baseline's 5.53 examples/s prints as 5.5."""
    no_amx = "bf16 slower than fp32 here (no AMX)"  # the note of that run
    records = [
        _speed("baseline", 5.53, 940.7, 1990, 0.8867, "padded to 120 tokens"),
        _speed("hf_spam", 55.1, 94.9, 1614, 0.8933),
        _speed("no_group_by_length", 44.8, 116.5, 1621, 0.9100),
        _speed("no_dynamic_padding", 62.1, 84.2, 1755, 0.8933),
        _speed("no_cache", 23.9, 218.6, 1266, 0.8933),
        _speed("no_skip_padding", 41.5, 126.0, 1617, 0.8933),
        _speed("bf16", 63.7, 82.0, 1612, 0.8933, no_amx),
        _speed("pipe_transformers", 11.4, 26.3, 1129, note="batch_size=1"),
        _speed("pipe_transformers_batched", 8.7, 34.5, 1865, note="batch_size=128"),
        _speed("pipe_hf_spam", 13.0, 23.1, 1215, note="batch_size=1"),
        _speed("pipe_hf_spam_batched", 22.8, 13.1, 1254, note="batch_size=128"),
        _speed("pipe_hf_spam_every_position", 10.3, 29.1, 1611,
               note="batch_size=128, no length grouping in the model"),
        _speed("pipe_hf_spam_bf16", 48.0, 6.3, 1398, note=f"batch_size=128, {no_amx}"),
        _speed("bulk_hf_spam", 22.2, 13.5, 1436, note="batch_size=128, length-sorted"),
    ]  # fmt: skip
    assert speed.format_rows(records) == SPEED_TABLE


@pytest.fixture
def readme_machine(monkeypatch):
    """The machine of those tables: a 2-core AMD EPYC without AMX, torch 2.13.0 CPU."""
    monkeypatch.setattr(runner, "cpu_name", lambda: "AMD EPYC")
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (2.0, 1.54, 0.96))
    monkeypatch.setattr(torch, "__version__", "2.13.0+cpu")
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    monkeypatch.setattr(speed, "cpu_has_fast_bf16", lambda: False)


def test_the_speed_header_names_the_machine_as_readme_shows_it(readme_machine):
    assert speed.header(SpeedArguments(dataset="sms_spam")) == SPEED_HEADER


def test_the_scale_and_bulk_headers_add_the_load_average(readme_machine, tmp_path):
    machine = "AMD EPYC (2 CPUs, load average 2.0, 1.5, 1.0), torch 2.13.0+cpu, 2 threads"
    assert scale.header(ScaleArguments(), tmp_path, 72.4, 4680.2) == (
        f"{machine}; stores in {tmp_path} (72 GB free); width 768, 2 blocks, last_block "
        "trainable, mean 300 tokens, 2 epoch(s); 4680 s in all"
    )
    assert runner.machine_header(cpu=[f"load average {runner.load_average()}"]) == machine


def test_the_bulk_table_prints_as_readme_shows_it():
    """(a) and (b): texts over the measured seconds; (c): the speed rows' own rates."""
    tiny = "(a) tiny, 100,000 texts"
    rows = [
        bulk.bulk_row(f"{tiny}, {path}", 100_000, Measured(seconds, peak))
        for path, seconds, peak in (
            ("bulk path", 13.825, 549),
            ("bulk path", 14.888, 549),
            ("pipeline()", 28.369, 555),
            ("pipeline()", 29.036, 555),
        )
    ]
    rows += [
        bulk.bulk_row(f"(b) tiny, {n:,} lines, bulk path", n, Measured(seconds, 549))
        for n, seconds in ((10_000, 5.651), (10_000, 5.6), (1_000_000, 98.5), (1_000_000, 101.6))
    ]
    for row, rate, seconds, peak, note in (
        ("pipe_hf_spam_batched", 33.2, 9.0, 1263, "batch_size=128"),
        (
            "pipe_hf_spam_every_position",
            14.1,
            21.2,
            1578,
            "batch_size=128, no length grouping in the model",
        ),
        ("bulk_hf_spam", 32.6, 9.2, 1455, "batch_size=128, length-sorted"),
    ):
        name = f"(c) 124M, {speed.ROWS[row].what}"
        rows.append(bulk.bulk_row(name, 0, Measured(seconds, peak), rate, note))
    assert format_table(rows) == BULK_TABLE  # fmt: skip


def test_the_bulk_bound_prints_as_readme_shows_it():
    """300 test texts of 8,990 tokens at 217 GFLOP/s: the bound depends on the count of texts
    and tokens only (the FLOPs are linear in both)."""
    lengths = [30] * 290 + [29] * 10
    assert sum(lengths) == 8_990
    assert bulk.bound_line(lengths, 217.0) == BULK_BOUND


def _run(tokens, rss, store, trunk, epochs, counts, hook, used=True) -> RunRecord:
    return RunRecord(tokens=tokens, peak_rss_mb=rss, store_bytes=store, trunk_seconds=trunk,
                     epoch_seconds=epochs, computed_per_example=counts, block0_rows=hook,
                     store_used=used)  # fmt: skip


def test_the_scale_tables_keep_their_format():
    rows = [
        scale.size_row(1000, _run(294_000, 1446.4, 0.9e9, 27.46, [11.0, 9.8], [1] * 1000, 1000),
                       _run(294_000, 1400, 0.9e9, 0.3, [1.0], [0] * 1000, 0)),
        scale.size_row(50000, _run(14_474_000, 1459.2, 44.47e9, 1373.6, [530.0, 510.9],
                                   [1] * 50000, 50000),
                       _run(14_474_000, 1400, 44.47e9, 0.5, [2.0], [0] * 50000, 0)),
        scale.size_row(40, _run(500, 300, 0, 0.0, [0.5, 0.4], [], 80, used=False),
                       _run(500, 300, 0, 0.0, [0.2], [], 40, used=False)),
    ]  # fmt: skip
    assert format_table(rows) == SCALE_TABLE
    metrics = {"test_loss": 0.5, "test_accuracy": 0.75, "train_running_loss": 0.9}
    one = RunRecord(computed_per_example=[1, 1, 1, 1], block0_rows=4, metrics=metrics)
    two = [RunRecord(rank=r, world_size=2, computed_per_example=c, block0_rows=sum(c),
                     metrics={**metrics, "test_loss": 0.51})
           for r, c in enumerate([[1, 0, 1, 0], [0, 1, 0, 1]])]  # fmt: skip
    weights = ({"w": torch.ones(3)}, {"w": torch.ones(3) + 7e-5})
    check = {"texts": 4, **scale.torchrun_check(two, one, weights)}
    assert format_table([check]) == TORCHRUN_TABLE
    assert scale.targets(rows[:2], check) == SCALE_TARGETS
