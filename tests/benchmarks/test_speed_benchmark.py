"""The speed table's rows and arguments (the measurements themselves are run by hand, not in CI)."""

from __future__ import annotations

import tempfile

import pytest
import torch
from helpers import label_info

from hf_spam.benchmarks import runner, speed, workload
from hf_spam.benchmarks.bulk import BulkArguments
from hf_spam.benchmarks.speed import SpeedArguments, SpeedRecord, format_rows
from hf_spam.cli import describe, main
from hf_spam.errors import DataError, UsageError


def _rows() -> list[SpeedRecord]:
    return [
        SpeedRecord("baseline: transformers GPT-2, padded to longest, plain loop", "train", 4.0,
                    1300.0, 5, 0.86, 1890.0, "padded to 120 tokens"),
        SpeedRecord("hf_spam default (fp32)", "train", 80.0, 65.0, 5, 0.9167, 1500.0),
        SpeedRecord("pipeline: transformers GPT-2 (defaults)", "inference", 10.0, 30.0,
                    note="batch_size=1"),
        SpeedRecord("pipeline: hf_spam, batched", "inference", 25.0, 12.0, note="batch_size=128"),
    ]  # fmt: skip


def test_table_gives_ratios_to_the_matching_baseline():
    lines = format_rows(_rows()).splitlines()
    header, rows = lines[0], {line.split("  ")[0]: line for line in lines[2:]}
    for column in ("examples/s", "s/epoch", "peak MB", "test acc", "x baseline"):
        assert column in header
    assert "20.0x" in rows["hf_spam default (fp32)"]  # 80 / 4 training examples/s
    assert "13.0" in rows["hf_spam default (fp32)"]  # 65 s over 5 epochs
    assert "2.5x" in rows["pipeline: hf_spam, batched"]  # 25 / 10 inference examples/s
    assert "1.0x" in rows["pipeline: transformers GPT-2 (defaults)"]


def test_quick_run_is_reduced():
    args = SpeedArguments(dataset="sms_spam", quick=True)
    assert (args.epochs, args.train_examples, args.test_examples) == (2, 48, 64)
    assert args.row_names == speed.QUICK_ROWS
    assert SpeedArguments(dataset="sms_spam").epochs == speed.EPOCHS == 5
    assert SpeedArguments(dataset="sms_spam").row_names == list(speed.ROWS)
    assert BulkArguments(dataset="sms_spam", quick=True).test_examples == 64


def test_unknown_row_is_refused_before_any_work(monkeypatch, capsys):
    monkeypatch.setattr(runner.subprocess, "Popen", lambda *a, **k: pytest.fail("a row ran"))
    with pytest.raises(UsageError) as info:
        SpeedArguments(dataset="sms_spam", rows="hf_spam,fastest,bogus")
    message = (
        f"--rows hf_spam,fastest,bogus: unknown rows bogus, fastest; choose from "
        f"{', '.join(speed.ROWS)}"
    )
    assert describe(info.value) == (2, message)
    assert main(["benchmark", "speed", "--rows", "hf_spam,fastest,bogus"]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"


@pytest.mark.parametrize("arguments", [SpeedArguments, BulkArguments])
def test_missing_dataset_is_named_before_any_row(tmp_path, arguments):
    for dataset, what in ((tmp_path / "missing", "file not found"), (tmp_path, "is a folder")):
        with pytest.raises(DataError) as info:
            arguments(dataset=str(dataset))
        assert describe(info.value) == (
            1,
            f"--dataset {dataset}: {what}; give the SMSSpamCollection file or sms_spam",
        )


def test_a_failing_row_gives_its_one_error_line_and_status(tmp_path, capfd):
    """Each row runs in a child process: its error comes through the command's error path (one
    line, no traceback) and the benchmark exits with the row's status, adding no line."""
    bad = tmp_path / "SMSSpamCollection"
    bad.write_text("ham hello\n")
    assert main(["benchmark", "--dataset", str(bad), "--quick", "--rows", "baseline"]) == 1
    err = capfd.readouterr().err
    assert err == (
        "running baseline ...\n"
        f"error: {bad}, line 1: no tab found, expected 'label<TAB>text' with label ham or spam\n"
    )


@pytest.mark.parametrize("native", [True, False])
def test_bf16_rows_say_when_the_cpu_has_no_amx(monkeypatch, native):
    monkeypatch.setattr(workload, "cpu_has_fast_bf16", lambda: native)
    assert ("no AMX" in workload.bf16_note()) is not native


def test_rows_switch_features_off_through_flags_not_patches():
    """Each hf_spam row is a command line of `hf-spam train`, parsed by its parser: the
    last-token/length-bucket forward is `--skip_padding_work false`, and build_model applies it
    to the model."""
    from hf_spam.training.arguments import parse_train_arguments
    from hf_spam.training.run import build_model

    rows = {
        n: r.options["flags"] for n, r in speed.ROWS.items() if r.function is speed.train_hf_spam
    }
    assert list(rows) == ["hf_spam", "no_group_by_length", "no_dynamic_padding", "no_cache",
                          "no_skip_padding", "bf16"]  # fmt: skip
    for row, flags in rows.items():
        model_args, *_ = parse_train_arguments(["--output_dir", "x", *flags])
        assert model_args.skip_padding_work is (row != "no_skip_padding"), row
    tiny = ["--init", "random", "--config_overrides", "emb_dim=8,n_layers=1,n_heads=2"]
    flags = rows["no_skip_padding"]
    model_args, *_ = parse_train_arguments(["--output_dir", "x", *tiny, *flags])
    assert build_model(model_args, label_info()).skip_padding_work is False


def test_hf_spam_rows_pay_for_a_fresh_trunk_pass(spam_csv, monkeypatch):
    """The store is built before Trainer's clock starts and would be reused from an earlier run
    under the default cache: each row builds its own and its time includes that pass."""
    from hf_spam.training import run as training

    seen = {}

    def fake_train(model_args, data_args, training_args, prepared):
        seen["store"] = model_args.trunk_cache_dir
        seen["n"] = len(prepared.dataset["train"])
        metrics = {"train_runtime": 10.0, "test_accuracy": 0.9}
        return training.TrainingResult(training_args.output_dir, metrics, 1, 2, 10.0, [],
                                       trunk_seconds=5.0)  # fmt: skip

    monkeypatch.setattr(training, "train", fake_train)
    row = speed.train_hf_spam(SpeedArguments(dataset=str(spam_csv), epochs=3))
    assert seen["store"].startswith(tempfile.gettempdir()) and seen["store"].endswith("features")
    assert row.seconds == 15.0 and row.examples_per_s == pytest.approx(seen["n"] * 3 / 15.0)


def test_the_baseline_trains_without_dropout_as_the_book_does():
    """The book fine-tunes with drop_rate 0.0 (as hf_spam does); GPT2Config's default is 0.1."""
    model = workload.baseline_model().train()
    assert all(m.p == 0.0 for m in model.modules() if isinstance(m, torch.nn.Dropout))
    ids = torch.randint(0, 50257, (2, 7))
    torch.testing.assert_close(model(input_ids=ids).logits, model(input_ids=ids).logits)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert all(
        name.startswith(("transformer.h.11.", "transformer.ln_f.", "score.")) for name in trainable
    )


def test_the_header_counts_the_texts_and_tokens_every_row_uses(spam_csv, tokenizer):
    args = SpeedArguments(dataset=str(spam_csv), train_examples=10, test_examples=6)
    prepared = workload.benchmark_data(args)
    tokens = {
        split: sum(
            len(ids) for ids in tokenizer(list(prepared.dataset[split]["text"]))["input_ids"]
        )
        for split in ("train", "test")
    }
    assert workload.data_summary(args).endswith(
        f"train 10 texts / {tokens['train']:,} tokens, test 6 texts / {tokens['test']:,} tokens"
    )
    bulk_cut = workload.benchmark_data(BulkArguments(dataset=str(spam_csv), test_examples=6))
    assert bulk_cut.dataset["test"]["text"] == prepared.dataset["test"]["text"]
    assert len(bulk_cut.dataset["train"]) > 10  # the bulk table cuts the test texts only
