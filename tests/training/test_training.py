"""Fine-tuning with Trainer: outputs, trainable-layer policies, cache exactness, resume, errors."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import ROOT, TINY_NO_KEY_BIAS, parse, save_gpt2_checkpoint, save_small_bpe, tiny_args
from safetensors.torch import load_file
from transformers import pipeline

from hf_spam import GPTConfig, GPTForSequenceClassification
from hf_spam.errors import HfSpamError, UsageError
from hf_spam.training.policies import apply_trainable_layers, trainable_parameters
from hf_spam.training.run import (
    ModelArguments,
    TrainingSetupError,
    build_model,
    load_run_tokenizer,
    train,
)


def eval_losses(output_dir: Path) -> list[float]:
    state = json.loads((output_dir / "trainer_state.json").read_text())
    return [e["eval_loss"] for e in state["log_history"] if "eval_loss" in e]


@pytest.fixture(scope="module")
def trained(spam_csv, tmp_path_factory) -> Path:
    """One tiny run on the fixture, shared by the output checks."""
    out = tmp_path_factory.mktemp("run") / "out"
    train(*parse(tiny_args(spam_csv, out, "--trainable_layers", "all")))
    return out


def test_output_folder_has_everything(trained):
    for name in (
        "model.safetensors", "config.json", "modeling.py", "configuration.py", "tokenizer.json",
        "tokenizer_config.json", "all_results.json", "loss-plot.png", "accuracy-plot.png",
        "confusion-matrix.png", "README.md", "examples.json",
    ):  # fmt: skip
        assert (trained / name).is_file(), name
    examples = json.loads((trained / "examples.json").read_text())
    assert {e["label"] for e in examples} == {"ham", "spam"} and all(e["text"] for e in examples)
    results = json.loads((trained / "all_results.json").read_text())
    for split in ("train", "validation", "test"):
        assert 0.0 <= results[f"{split}_accuracy"] <= 1.0
        assert results[f"{split}_samples"] > 0
    assert results["confusion_matrix"]["test"] and results["train_runtime"] > 0
    config = json.loads((trained / "config.json").read_text())
    assert config["id2label"] == {"0": "ham", "1": "spam"}
    card = (trained / "README.md").read_text()
    assert card.startswith("---") and "pipeline_tag: text-classification" in card
    assert f"({results['total_parameters'] / 1e6:.1f}M parameters)" in card
    hyperparameters = dict(re.findall(r"^\| (\w+) +\| +(\S+) +\|$", card, re.MULTILINE))
    assert hyperparameters["gradient_clipping"] == "none"  # the book's loop does not clip
    assert (hyperparameters["learning_rate"], hyperparameters["epochs"]) == ("0.002", "3")
    # What a reader needs to tell a run in the book's loop from hf_spam's faster default.
    assert hyperparameters["batch_order"] == "group_by_length"
    assert hyperparameters["gradient_accumulation_steps"] == "1"


def test_validation_loss_falls(trained):
    losses = eval_losses(trained)
    assert len(losses) == 3 and losses[-1] < losses[0]


def test_log_history_uses_trainers_eval_keys(trained):
    """Validation under Trainer's `eval_*` keys; the training set (the book's plots) under
    `train_*`, once per evaluation."""
    history = json.loads((trained / "trainer_state.json").read_text())["log_history"]
    keys = {key for entry in history for key in entry}
    assert {"eval_loss", "eval_accuracy", "train_accuracy"} <= keys
    assert not [key for key in keys if key.startswith(("eval_validation_", "eval_train_"))]
    # One per epoch (the final scores of `train` add a point at the last epoch, same model).
    assert {e["epoch"] for e in history if "train_accuracy" in e} == {1.0, 2.0, 3.0}


def test_pipeline_answers_with_label_names(trained):
    clf = pipeline("text-classification", model=str(trained))
    out = clf(["WIN a free prize call now", "see you at home later mum"])
    assert {o["label"] for o in out} <= {"ham", "spam"}
    assert [o["label"] for o in out] == ["spam", "ham"]


def test_real_sms_file_tiny_model_learns(sms_file, tiktoken_available, tmp_path):
    out = tmp_path / "sms"
    extra = ("--num_train_epochs", "2", "--trainable_layers", "all", "--learning_rate", "1e-3")
    result = train(*parse(tiny_args(sms_file, out, *extra)))
    losses = eval_losses(out)
    assert losses[-1] < losses[0]
    assert result.metrics["train_samples"] == 1045 and result.metrics["test_samples"] == 300


EXPECTED_TRAINABLE = {
    "head": {"out_head.weight", "out_head.bias"},
    "last_block": {
        "out_head.weight",
        "out_head.bias",
        "gpt.final_norm.scale",
        "gpt.final_norm.shift",
    }
    | {n for n in [] if n},
}


@pytest.mark.parametrize("policy", ["head", "last_block", "last_two_blocks", "all"])
def test_trainable_layers_policy(policy):
    config = GPTConfig(vocab_size=50257, context_length=16, emb_dim=32, n_heads=4, n_layers=3)
    model = GPTForSequenceClassification(config)
    args = ModelArguments(trainable_layers=policy)
    model = apply_trainable_layers(model, args)
    trainable, total, names = trainable_parameters(model)
    blocks = {
        "head": [],
        "last_block": [2],
        "last_two_blocks": [1, 2],
        "all": [0, 1, 2],
    }
    emb, block_size = 32, 12 * 32 * 32 + 13 * 32  # one block: 4 e^2 attn + 8 e^2 ff + biases/norms
    head = 2 * emb + 2
    expected = head + len(blocks[policy]) * block_size + (2 * emb if policy != "head" else 0)
    if policy == "all":
        expected = total
    assert trainable == expected
    trained_blocks = {int(n.split(".")[2]) for n in names if n.startswith("gpt.trf_blocks.")}
    assert trained_blocks == set(blocks[policy])
    assert ("gpt.final_norm.scale" in names) == (policy != "head")
    assert ("gpt.tok_emb.weight" in names) == (policy == "all")


BOOK_RECIPE = ("--trainable_token_pos", "last", "--context_length", "longest_training_example")


@pytest.mark.parametrize("knobs", [(), BOOK_RECIPE, (*BOOK_RECIPE, "--average_embeddings")])
def test_frozen_trunk_cache_is_exact(spam_csv, tmp_path, knobs, caplog):
    """Cached and uncached runs end with the same weights, for the flexible head and for the
    book's fixed-position rows (whose trunk sees the padded rows); a second cached run with the
    same frozen weights and data reuses the store and computes nothing."""
    weights = {}
    store = tmp_path / "store"
    for cache in ("true", "false", "again"):
        out = tmp_path / f"cache-{cache}"
        args = tiny_args(spam_csv, out, *knobs, "--num_train_epochs", "2", "--trunk_cache_dir")
        args += [str(store), "--frozen_trunk_cache", str(cache != "false").lower()]
        args += ["--config_overrides", TINY_NO_KEY_BIAS, "--save_strategy", "no"]
        with caplog.at_level("INFO", logger="hf_spam.features"):
            train(*parse(args))
        weights[cache] = load_file(out / "model.safetensors")
    assert "Trunk feature store: reusing" in caplog.text
    assert len(list(store.iterdir())) == 1  # one fingerprint, built once
    for key, value in weights["true"].items():
        torch.testing.assert_close(value, weights["false"][key], atol=1e-5, rtol=0, msg=key)
        torch.testing.assert_close(value, weights["again"][key], atol=0, rtol=0, msg=key)


REENTRANT = ("--gradient_checkpointing_kwargs", '{"use_reentrant": true}')


# transformers 5.24 renamed the flags `--activation_checkpointing*` (and peft still calls the old
# `is_gradient_checkpointing`); the old names work in every 5.x.
@pytest.mark.filterwarnings("ignore:`(is_)?gradient_checkpointing:FutureWarning")
@pytest.mark.parametrize(
    ("policy", "extra"),
    [
        ("all", ("--config_overrides", TINY_NO_KEY_BIAS + ",drop_rate=0.1")),  # dropout replayed
        ("last_block", REENTRANT),  # the trunk cache feeds the checkpointed top block
        ("lora", REENTRANT),  # peft's adapters in frozen blocks
    ],
)
def test_gradient_checkpointing_trains_the_same_model(spam_csv, tmp_path, policy, extra, caplog):
    """`--gradient_checkpointing true` recomputes each block in the backward pass instead of
    keeping its activations: the same loss and gradient norm at every step, the same weights."""
    runs = {}
    for checkpointing in ("false", "true"):
        out = tmp_path / checkpointing
        args = tiny_args(spam_csv, out, "--trainable_layers", policy, "--max_steps", "5")
        args += ["--config_overrides", TINY_NO_KEY_BIAS, *extra, "--logging_steps", "1"]
        args += ["--gradient_checkpointing", checkpointing, "--save_strategy", "no"]
        with caplog.at_level("INFO", logger="hf_spam.features"):
            train(*parse(args + ["--eval_on_train", "false", "--report_to", "none"]))
        history = json.loads((out / "trainer_state.json").read_text())["log_history"]
        steps = [(e["loss"], e["grad_norm"]) for e in history if "grad_norm" in e]
        runs[checkpointing] = steps, load_file(out / "model.safetensors")
    (steps, weights), (steps_c, weights_c) = runs["false"], runs["true"]
    assert ("Trunk feature store: reusing" in caplog.text) == (policy == "last_block")
    assert len(steps) == 5 and steps_c == steps
    assert weights_c.keys() == weights.keys()
    for key, value in weights.items():
        assert torch.equal(weights_c[key], value), key


def test_book_defaults():
    model_args, data_args, training_args = parse(["--output_dir", "unused"])
    assert model_args.model_name_or_path == "openai-community/gpt2"
    assert model_args.trainable_layers == "last_block"
    assert (training_args.learning_rate, training_args.weight_decay) == (5e-5, 0.1)
    assert training_args.per_device_train_batch_size == 8
    assert (training_args.num_train_epochs, training_args.seed) == (5, 123)
    assert training_args.max_grad_norm == 0  # the book's loop does not clip gradients
    assert training_args.lr_scheduler_type == "constant"


def test_bf16_on_cpu_without_amx_warns(spam_csv, tmp_path, monkeypatch, caplog):
    import hf_spam.training.run as training

    monkeypatch.setattr(training, "cpu_has_fast_bf16", lambda: False)
    out = tmp_path / "bf16"
    args = tiny_args(spam_csv, out, "--bf16", "true", "--num_train_epochs", "1")
    with caplog.at_level("WARNING", logger="hf_spam.training.run"):
        train(*parse(args + ["--save_strategy", "no"]))
    assert (
        "--bf16 on a CPU without AMX" in caplog.text
        and "scripts/benchmark.py measures both" in caplog.text
    )
    assert (out / "model.safetensors").exists()  # a warning, not a refusal


def test_bad_arguments_fail_before_any_work(spam_csv, tmp_path, monkeypatch, capsys):
    import hf_spam.training.arguments as args_module
    import hf_spam.training.run as training

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the arguments were checked")

    monkeypatch.setattr(training, "prepare_data", no_work)
    # From the command line argparse names the choices; from Python the library does.
    with pytest.raises(SystemExit):
        parse(tiny_args(spam_csv, tmp_path / "a", "--trainable_layers", "top"))
    assert (
        "invalid choice: 'top' (choose from 'head', 'last_layer', 'last_block'"
        in capsys.readouterr().err
    )
    model_args, data_args, training_args = parse(tiny_args(spam_csv, tmp_path / "a"))
    model_args.trainable_layers = "top"
    with pytest.raises(TrainingSetupError, match="--trainable_layers 'top' is unknown; choose one"):
        train(model_args, data_args, training_args)
    real_find_spec = args_module.importlib.util.find_spec
    monkeypatch.setattr(
        args_module.importlib.util,
        "find_spec",
        lambda n: None if n == "peft" else real_find_spec(n),
    )
    with pytest.raises(TrainingSetupError, match=r"lora needs peft: pip install 'hf_spam\[lora\]'"):
        train(*parse(tiny_args(spam_csv, tmp_path / "b", "--trainable_layers", "lora")))
    with pytest.raises(
        TrainingSetupError,
        match="--max_length 100 is longer than the model's context length \\(64\\)",
    ):
        train(*parse(tiny_args(spam_csv, tmp_path / "c", "--max_length", "100")))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    with pytest.raises(FileExistsError, match="--overwrite_output_dir"):
        train(*parse(tiny_args(spam_csv, busy)))
    with pytest.raises(TrainingSetupError, match="config_overrides: 'emb=3' is not FIELD=VALUE"):
        train(*parse(tiny_args(spam_csv, tmp_path / "d", "--config_overrides", "emb=3")))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--learning_rate", "-1"), "--learning_rate must be > 0, got -1.0"),
        (("--learning_rate", "0"), "--learning_rate must be > 0, got 0.0"),
        (("--per_device_train_batch_size", "0"), "--per_device_train_batch_size must be at least 1"),
        (("--per_device_eval_batch_size", "-2"), "--per_device_eval_batch_size must be at least 1"),
        (("--num_train_epochs", "0"), "--num_train_epochs must be > 0 (or --max_steps > 0), got 0"),
        (("--resume_from_checkpoint", "/no/such/ckpt"), "--resume_from_checkpoint /no/such/ckpt: no such folder"),
        (("--config_overrides", "emb_dim=32,n_heads=3"), "n_heads (3) must divide emb_dim (32)"),
        (("--config_overrides", "n_heads=5"), "n_heads (5) must divide emb_dim (768)"),
        (("--lora_rank", "0"), "--lora_rank must be at least 1, got 0"),
        (("--save_adapter",), "--save_adapter needs --trainable_layers lora (got last_block)"),
        (("--trainable_layers", "lora", "--save_adapter", "true"), "--save_adapter needs --init pretrained"),
    ],
)  # fmt: skip
def test_bad_values_fail_while_parsing_with_one_line(spam_csv, tmp_path, flags, message):
    """HfArgumentParser runs the dataclasses' checks: a UsageError naming the flag, before any
    data is read (the parse never touches the data file)."""
    argv = tiny_args(spam_csv, tmp_path / "out", *flags)
    if "--config_overrides" in flags:  # the last one wins
        argv = [a for a in argv if a != "emb_dim=32,n_layers=2,n_heads=4,context_length=64"]
        argv.remove("--config_overrides")
        argv += list(flags)
    with pytest.raises(UsageError) as info:
        parse(argv)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_train_from_a_gpt2_classifier_with_its_own_tokenizer(spam_csv, tmp_path):
    """A `GPT2ForSequenceClassification` folder with a BPE of its own: the texts are read with
    that BPE, the run starts from its head (transformers' logits on the run's own batches) and
    the trained folder keeps that tokenizer and its special tokens."""
    from transformers import AutoTokenizer

    from hf_spam.data import get_data_collator, prepare_data

    checkpoint = tmp_path / "gpt2-classifier"
    reference = save_small_bpe(checkpoint)
    reference.encode_special_tokens = True
    eot = reference.token_to_id("<|endoftext|>")
    ref = save_gpt2_checkpoint(
        checkpoint, "classifier", vocab_size=reference.get_vocab_size(),
        id2label={0: "ham", 1: "spam"}, pad_token_id=eot, bos_token_id=eot, eos_token_id=eot,
    )  # fmt: skip
    out = tmp_path / "out"
    argv = [
        "--dataset", str(spam_csv), "--model_name_or_path", str(checkpoint),
        "--output_dir", str(out), "--num_train_epochs", "1", "--save_strategy", "no",
        "--eval_on_train", "false", "--report_to", "none", "--disable_tqdm", "true",
    ]  # fmt: skip
    model_args, data_args, training_args = parse(argv)
    prepared = prepare_data(data_args, 64, load_run_tokenizer(model_args, 64))
    test = prepared.dataset["test"]
    assert test["input_ids"] == [e.ids for e in reference.encode_batch(list(test["text"]))]
    model, loading = build_model(model_args, prepared, output_loading_info=True)
    assert loading["missing_keys"] == []  # the head came with the weights
    assert model.config.pad_token_id == model.config.eos_token_id == eot
    batch = get_data_collator(prepared)([{"input_ids": ids} for ids in test["input_ids"][:8]])
    with torch.no_grad():
        ours = model(**batch).logits
        theirs = ref(**batch).logits  # finds each row's last real token from the pad id
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)

    train(model_args, data_args, training_args)
    saved = AutoTokenizer.from_pretrained(out)
    assert saved(list(test["text"]))["input_ids"] == test["input_ids"]
    config = json.loads((out / "config.json").read_text())
    assert (config["vocab_size"], config["pad_token_id"]) == (reference.get_vocab_size(), eot)


def test_max_steps_without_epochs_is_accepted(spam_csv, tmp_path):
    *_, training_args = parse(
        tiny_args(spam_csv, tmp_path, "--num_train_epochs", "0", "--max_steps", "2")
    )
    assert training_args.max_steps == 2


def test_drop_last_drops_training_batches_only(tiktoken_available, tmp_path):
    """The book's loaders: the training loader drops its last partial batch, evaluation none."""
    from helpers import write_spam_fixture

    from hf_spam.data import DataArguments, prepare_data

    data = write_spam_fixture(tmp_path / "spam.csv", rows=150)
    sizes = {s: len(d) for s, d in prepare_data(DataArguments(dataset=str(data))).dataset.items()}
    assert all(n % 8 for n in sizes.values())  # every split ends in a partial batch
    out = tmp_path / "out"
    train(*parse(tiny_args(data, out, "--dataloader_drop_last", "true")))
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 3 * (sizes["train"] // 8)
    results = json.loads((out / "all_results.json").read_text())
    for split, n in sizes.items():
        assert sum(map(sum, results["confusion_matrix"][split])) == n


def test_choices_are_checked_from_python_too():
    with pytest.raises(UsageError, match="--init must be one of"):
        ModelArguments(init="zeros")
    with pytest.raises(UsageError, match="--lora_alpha_convention must be one of book, peft"):
        ModelArguments(lora_alpha_convention="paper")


def test_script_help_lists_every_flag():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), "--help"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    for flag in ("--trainable_layers", "--dataset", "--bf16", "--lora_rank", "--padding",
                 "--resume_from_checkpoint", "--frozen_trunk_cache", "--push_to_hub"):  # fmt: skip
        assert flag in result.stdout


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}


KILL_AFTER_FIRST_SAVE = """
import os, signal, sys
from transformers import TrainerCallback
sys.path.insert(0, {tests!r})
from helpers import parse
from hf_spam.training.run import train

class KillAfterFirstSave(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)  # no clean-up, as if the machine went away

train(*parse({argv!r}), callbacks=[KillAfterFirstSave()])
"""


def test_resume_after_kill_matches_uninterrupted_run(spam_csv, tmp_path):
    def args(out: Path) -> list[str]:
        extra = ("--save_strategy", "steps", "--save_steps", "10")
        return tiny_args(spam_csv, out, *extra, "--config_overrides", TINY_NO_KEY_BIAS)

    full = tmp_path / "full"
    train(*parse(args(full)))

    killed = tmp_path / "killed"
    script = KILL_AFTER_FIRST_SAVE.format(tests=str(ROOT / "tests"), argv=args(killed))
    proc = subprocess.run([sys.executable, "-c", script], env=_env(), capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert [p.name for p in killed.glob("checkpoint-*")] == ["checkpoint-10"]
    assert not (killed / "model.safetensors").exists()

    train(*parse(args(killed) + ["--resume_from_checkpoint", "last"]))
    a, b = load_file(full / "model.safetensors"), load_file(killed / "model.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0, msg=key)


# One process with batch 8 and two with batch 4 see the same 8 examples per step when both draw
# from one seeded random order (accelerate deals batches out to the ranks in turn). Length
# grouping would group by the per-device batch size, so the orders would differ.
SAME_ORDER = ("--train_sampling_strategy", "random")


@pytest.mark.slow
def test_two_process_cpu_run_matches_one_process(spam_csv, tmp_path):
    one = tmp_path / "one"
    train(*parse(tiny_args(spam_csv, one, "--save_strategy", "no", *SAME_ORDER)))
    two = tmp_path / "two"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        str(ROOT / "scripts" / "train.py"),
        *tiny_args(spam_csv, two, "--save_strategy", "no", *SAME_ORDER, "--per_device_train_batch_size", "4",
                   "--ddp_backend", "gloo", "--log_level_replica", "info", "--log_level", "info"),
    ]  # fmt: skip
    result = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert "Process 0 of 2" in log and "Process 1 of 2" in log
    a = json.loads((one / "all_results.json").read_text())
    b = json.loads((two / "all_results.json").read_text())
    assert b["world_size"] == 2 and a["world_size"] == 1
    # Same examples per step, same initial weights: only the order of float sums differs (two
    # half-batch means averaged by all-reduce vs one mean), ~1e-7 per step; over ~40 Adam steps
    # that stays far below 1e-3 in the loss and cannot flip a prediction of a fitted model.
    for key in ("test_loss", "validation_loss", "train_loss"):
        assert b[key] == pytest.approx(a[key], abs=1e-3), key
    for key in ("test_accuracy", "validation_accuracy"):
        assert b[key] == pytest.approx(a[key], abs=1e-9), key


def test_push_to_hub_needs_a_token_before_any_work(spam_csv, tmp_path, monkeypatch):
    import hf_spam.hub.sharing as sharing
    import hf_spam.training.run as training

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(sharing, "get_token", lambda: None)
    monkeypatch.setattr(training, "prepare_data", lambda *a, **k: pytest.fail("work started"))
    args = tiny_args(spam_csv, tmp_path / "p", "--push_to_hub", "--hub_model_id", "me/spam")
    with pytest.raises(sharing.HubError, match="No Hugging Face token"):
        train(*parse(args))
    with pytest.raises(sharing.HubError, match="No Hugging Face token"):
        train(*parse(tiny_args(spam_csv, tmp_path / "p", "--push_to_hub")))


def test_push_to_hub_uploads_the_finished_folder(spam_csv, tmp_path, monkeypatch):
    """Without --hub_model_id the repo is named as Trainer names it: the output folder's name in
    the token user's namespace. --license reaches the card."""
    import huggingface_hub
    from helpers import FakeHfApi

    import hf_spam.hub.upload as upload

    FakeHfApi.calls, FakeHfApi.fail_upload = [], False
    monkeypatch.setattr(upload, "HfApi", FakeHfApi)
    monkeypatch.setattr(huggingface_hub, "whoami", lambda token=None: {"name": "me"})
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    out = tmp_path / "spam-model"
    extra = ("--push_to_hub", "--num_train_epochs", "1", "--license", "apache-2.0")
    train(*parse(tiny_args(spam_csv, out, *extra)))
    calls = dict(FakeHfApi.calls)
    assert calls["init"] == {"token": "hf_test"}
    assert calls["create_repo"]["repo_id"] == "me/spam-model"
    assert "license: apache-2.0" in (out / "README.md").read_text()
    uploaded = calls["upload_folder"]["files"]
    assert {"model.safetensors", "config.json", "modeling.py", "README.md"} <= set(uploaded)
    assert not [name for name in uploaded if name.startswith("checkpoint-")]


FINAL_FILES = {
    "model.safetensors",
    "config.json",
    "tokenizer.json",
    "all_results.json",
    "README.md",
}


def _assert_no_final_outputs(out: Path) -> None:
    left = {p.name for p in out.iterdir()} if out.exists() else set()
    assert not left & (FINAL_FILES | {".final-outputs.tmp"}), left


def test_failure_while_saving_leaves_no_partial_model_folder(
    spam_csv, tmp_path, monkeypatch, capsys
):
    """The final files are written aside: a failure on the last one (the card) leaves neither
    weights nor config behind, and says which file in one line."""
    import hf_spam.hub.rendering as card

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(card, "render_model_card", full_disk)
    out = tmp_path / "out"
    with pytest.raises(HfSpamError) as info:
        train(*parse(tiny_args(spam_csv, out, "--num_train_epochs", "1", "--save_strategy", "no")))
    message = str(info.value)
    assert message.startswith(
        f"{out / 'README.md'}: could not be written (No space left on device)"
    )
    assert "\n" not in message
    _assert_no_final_outputs(out)
    # The count README promises is printed, not only logged (scripts log at WARNING).
    assert "Trainable parameters: " in capsys.readouterr().out


DISK_LIMIT_AFTER_TRAINING = """
import resource, signal, sys
from transformers import TrainerCallback
sys.path.insert(0, {tests!r})
from helpers import parse
from hf_spam.errors import HfSpamError
from hf_spam.training.run import train

class DiskLimit(TrainerCallback):
    def on_train_end(self, args, state, control, **kwargs):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, resource.RLIM_INFINITY))

try:
    train(*parse({argv!r}), callbacks=[DiskLimit()])
except HfSpamError as err:
    print(f"error: {{err}}", file=sys.stderr)
    sys.exit(err.exit_code)
"""


def test_disk_limit_while_saving_leaves_no_partial_model_folder(spam_csv, tmp_path):
    out = tmp_path / "limited"
    argv = tiny_args(spam_csv, out, "--num_train_epochs", "1", "--save_strategy", "no")
    script = DISK_LIMIT_AFTER_TRAINING.format(tests=str(ROOT / "tests"), argv=argv)
    proc = subprocess.run(
        [sys.executable, "-c", script], env=_env(), capture_output=True, text=True
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {out / 'model.safetensors'}: could not be written"), last
    _assert_no_final_outputs(out)


def test_evaluating_the_training_set_does_not_change_the_training(spam_csv, tmp_path):
    """`--eval_on_train` only reports: the extra evaluation after each epoch must not move the
    RNG that shuffles the next epoch (it did: weights differed from epoch 2 on)."""
    weights = {}
    for flag in ("true", "false"):
        out = tmp_path / flag
        args = tiny_args(spam_csv, out, "--trainable_layers", "all", "--num_train_epochs", "2")
        train(*parse(args + ["--eval_on_train", flag, "--save_strategy", "no"]))
        weights[flag] = load_file(out / "model.safetensors")
    for key, value in weights["true"].items():
        assert torch.equal(value, weights["false"][key]), key
