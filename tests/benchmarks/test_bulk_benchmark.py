"""The bulk benchmark's bound on the 124M rows: FLOPs counted against torch's own FLOP counter,
and the matrix-product rate it divides them by."""

from __future__ import annotations

import time

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from hf_spam import GPTConfig, GPTForSequenceClassification
from hf_spam.benchmarks.bulk import classifier_forward_flops
from hf_spam.hardware import matmul_gflops


@pytest.mark.parametrize("lengths", [[1], [5, 9], [3, 17, 2, 30]])
def test_forward_flops_are_the_models_matrix_products(lengths):
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=100, context_length=32, emb_dim=32, n_heads=4, n_layers=3)
    model = GPTForSequenceClassification(config).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        for n in lengths:  # unpadded, one text at a time
            model(input_ids=torch.randint(0, 100, (1, n)))
    counts = counter.get_flop_counts()["Global"]
    products = sum(v for op, v in counts.items() if "attention" not in str(op))  # no scores
    assert classifier_forward_flops(config, lengths) == products


def test_matmul_rate_is_the_products_flops_over_the_best_time(monkeypatch):
    """With a clock that advances 1 ms a reading, every product takes 1 ms: the rate is the
    product's FLOPs (torch's counter) per ms; a real clock gives a positive, finite rate."""
    rows, width = 64, 32
    counter = FlopCounterMode(display=False)
    with counter:
        torch.randn(rows, width) @ torch.randn(width, 4 * width)
    flops = counter.get_total_flops()
    clock = iter(range(10**6))
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock) * 1e-3)
    assert matmul_gflops(rows=rows, width=width, seconds=0.05) == pytest.approx(flops / 1e-3 / 1e9)
    monkeypatch.undo()
    assert 0 < matmul_gflops(rows=rows, width=width, seconds=0.05) < float("inf")
