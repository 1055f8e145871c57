"""Faults while writing: a file-size limit during every kind of save, and `kill -9` at several
moments of a training run followed by a resume.

Each fault happens in a child process (`sys.executable -c`), as it would to a user: the limit is
`RLIMIT_FSIZE` with SIGXFSZ ignored, so the write fails with EFBIG as on a full disk; the kill is
SIGKILL from inside the run, so no clean-up code runs. What must hold afterwards: one `error:`
line naming the file, exit status 1, and the destination as it was (absent, or the old version
intact); after a kill, `--resume_from_checkpoint last` (or a rerun) ends with the weights of an
uninterrupted run, and a model folder never looks finished before it is.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import (
    ROOT,
    TINY_NO_KEY_BIAS,
    parse,
    random_model,
    save_gpt2_checkpoint,
    tiny_args,
    write_spam_fixture,
)
from safetensors.torch import load_file

from hf_spam.errors import ModelLoadError
from hf_spam.files import FINAL_STAGING, FINAL_STAGING_GLOB, check_model_folder
from hf_spam.training.run import train

_PROGRESS = re.compile(r"\r|\d+(it|examples)/s\]")


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_SPAM_DEBUG", None)
    return env


def _child(script: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", script], env=_env(), capture_output=True, text=True,
        timeout=timeout, cwd=ROOT,
    )  # fmt: skip


def _error_line(stderr: str) -> str:
    """The only line of `stderr` besides progress bars, checked to be an `error:` line."""
    lines = [line for line in stderr.split("\n") if line.strip() and not _PROGRESS.search(line)]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr[-2000:]
    return lines[0]


def _leftovers(destination: Path) -> list[str]:
    """Temporary siblings of `destination` (`.NAME.tmp-*`, `.NAME.*.tmp`) that stayed behind."""
    return [p.name for p in destination.parent.glob(f".{destination.name}*")]


# ------------------------------------------------------------------------------------------------
# A file-size limit during each kind of save
# ------------------------------------------------------------------------------------------------

# Runs `hf-spam` commands in one process; each case sets the limit for the whole command or only
# while one function (the save) runs, so reading inputs and the datasets cache stay unaffected.
LIMITED_COMMANDS = """
import contextlib, importlib, io, json, logging, resource, signal, sys
from types import SimpleNamespace
from hf_spam.cli import main

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
UNLIMITED = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)

@contextlib.contextmanager
def limit(size):
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, UNLIMITED)

@contextlib.contextmanager
def during(module, name, size):
    module = importlib.import_module(module)
    original = getattr(module, name)
    def limited(*args, **kwargs):
        with limit(size):
            return original(*args, **kwargs)
    setattr(module, name, limited)
    try:
        yield
    finally:
        setattr(module, name, original)

def trunk_store(cache_dir):
    import torch
    from datasets import Dataset
    from hf_spam import GPTConfig, GPTForSequenceClassification
    from hf_spam.training.trainer import open_trunk_cache
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=500, context_length=32, emb_dim=32, n_heads=4, n_layers=2)
    model = GPTForSequenceClassification(config).eval()
    data = Dataset.from_dict({"input_ids": [[i % 500] * (5 + i % 20) for i in range(200)]})
    trainer = SimpleNamespace(
        model=model, accelerator=SimpleNamespace(unwrap_model=lambda m: m),
        args=SimpleNamespace(disable_tqdm=True, world_size=1),
    )
    logs = io.StringIO()
    logging.getLogger("hf_spam").addHandler(logging.StreamHandler(logs))
    with limit(4000):
        store = open_trunk_cache(trainer, data, 1, SimpleNamespace(trunk_cache_dir=cache_dir))
    return int(store is not None), logs.getvalue()

results = {}
for name, argv, where, size in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        if name == "trunk-store":
            results[name] = trunk_store(argv)
            continue
        with (during(*where, size) if where else limit(size)):
            status = main(argv)
    results[name] = [status, err.getvalue()]
print(json.dumps(results))
"""


def _old_version(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "old.txt").write_text("the previous output")
    return folder


def _is_old_version(folder: Path) -> bool:
    return [p.name for p in folder.iterdir()] == ["old.txt"] and (
        folder / "old.txt"
    ).read_text() == "the previous output"


@pytest.fixture(scope="module")
def limited(tmp_path_factory, tiktoken_available):
    """Every limited save, run once; {case: (status, stderr)} and the folders involved."""
    root = tmp_path_factory.mktemp("limits")
    model = random_model(root / "model")
    save_gpt2_checkpoint(root / "gpt2")
    csv = write_spam_fixture(root / "spam.csv", rows=40)
    out = root / "out"
    out.mkdir()
    (out / "old-predictions.jsonl").write_text("the previous output\n")
    for name in ("convert-old", "evaluate-old", "push-old", "prepare-old"):
        _old_version(out / name)
    evaluate = ["evaluate", "--model", model, "--dataset", csv, "--eval_split", "all"]
    push = ["push", "--model", model, "--repo_id", "me/spam", "--dry_run"]
    prepare = ["prepare-data", "--dataset", csv, "--data_cache_dir", root / "cache"]
    predict = ["predict", "--model", model, "--input", csv, "--progress", "false"]
    on = {
        "evaluate": ["hf_spam.cli.evaluate", "write_evaluation_report"],
        "push": ["hf_spam.hub.sharing", "build_upload_folder"],
        "prepare": ["hf_spam.cli.prepare_data", "save_dataset_to_disk"],
        "predict": ["hf_spam.cli.predict", "write_predictions"],
    }
    overwrite = ["--overwrite_output_dir", "true"]
    cases = [
        ("convert", ["convert", "--source", root / "gpt2", "--output_dir", out / "convert"],
         None, 200_000),
        ("convert-old", ["convert", "--source", root / "gpt2", "--output_dir",
                         out / "convert-old", *overwrite], None, 200_000),
        ("evaluate", [*evaluate, "--output_dir", out / "evaluate"], on["evaluate"], 2_000),
        ("evaluate-old", [*evaluate, "--output_dir", out / "evaluate-old", *overwrite],
         on["evaluate"], 2_000),
        ("push", [*push, "--output_dir", out / "push"], on["push"], 1_000),
        ("push-old", [*push, "--output_dir", out / "push-old", *overwrite], on["push"], 1_000),
        ("prepare", [*prepare, "--save_to_disk", out / "prepare"], on["prepare"], 1_000),
        ("prepare-old", [*prepare, "--save_to_disk", out / "prepare-old", "--overwrite", "true"],
         on["prepare"], 1_000),
        # Small enough to sit in the write buffer: the write fails at the flush on close.
        ("predict", [*predict, "--output", out / "predictions.jsonl"], on["predict"], 500),
        ("predict-old", [*predict, "--output", out / "old-predictions.jsonl", "--overwrite",
                         "true"], on["predict"], 500),
        ("trunk-store", root / "trunk-cache", None, 0),
    ]  # fmt: skip
    argv = json.dumps([[n, [str(a) for a in v] if isinstance(v, list) else str(v), w, s]
                       for n, v, w, s in cases])  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", LIMITED_COMMANDS, argv],
        env=_env(), capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), root, out


# (case, destination, the file the message names (relative to the destination), the message's
# tail after "error: <file>: ")
LIMITED_SAVES = [
    ("convert", "convert", "model.safetensors", "could not be written (File too large"),
    ("convert-old", "convert-old", "model.safetensors", "could not be written (File too large"),
    ("evaluate", "evaluate", "roc-curve.png", "file too large (a file-size limit"),
    ("evaluate-old", "evaluate-old", "roc-curve.png", "file too large (a file-size limit"),
    ("push", "push", "model.safetensors", "file too large (a file-size limit"),
    ("push-old", "push-old", "model.safetensors", "file too large (a file-size limit"),
    ("prepare", "prepare", ".", "could not be written (File too large)"),
    ("prepare-old", "prepare-old", ".", "could not be written (File too large)"),
    ("predict", "predictions.jsonl", ".", "file too large (a file-size limit"),
    ("predict-old", "old-predictions.jsonl", ".", "file too large (a file-size limit"),
]


@pytest.mark.parametrize(("case", "destination", "named", "reason"), LIMITED_SAVES)
def test_file_size_limit_names_the_file_and_leaves_the_destination(
    limited, case, destination, named, reason
):
    results, _, out = limited
    status, stderr = results[case]
    line = _error_line(stderr)
    target = out / destination
    file = target if named == "." else target / named
    assert status == 1, line
    assert line.startswith(f"error: {file}: {reason}"), line
    assert not _leftovers(target), _leftovers(target)
    if case.endswith("-old"):
        if target.is_dir():
            assert _is_old_version(target), sorted(p.name for p in target.iterdir())
        else:
            assert target.read_text() == "the previous output\n"
    else:
        assert not target.exists(), sorted(p.name for p in target.iterdir())


def test_push_copies_are_named_at_their_destination(limited):
    """A copy that fails (shutil names the source first) is reported at the upload folder."""
    results, root, out = limited
    for case in ("push", "push-old"):
        assert str(root / "model") not in results[case][1]


def test_trunk_store_falls_back_when_it_cannot_be_written(limited):
    """The frozen blocks then run every epoch (exact, slower): a warning, no store, no temp."""
    results, root, _ = limited
    opened, log = results["trunk-store"]
    assert opened == 0
    assert "Trunk feature store off: it could not be written (File too large" in log, log
    assert "the frozen blocks will run in every epoch" in log
    assert list((root / "trunk-cache").iterdir()) == []


# ------------------------------------------------------------------------------------------------
# kill -9 during a training run, then resume
# ------------------------------------------------------------------------------------------------

KILLED_RUN = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from helpers import parse
from transformers import TrainerCallback
from hf_spam.training.run import train

def die():
    os.kill(os.getpid(), signal.SIGKILL)  # no clean-up runs, as if the machine went away

callbacks = []
{setup}
train(*parse({argv!r}), callbacks=callbacks)
"""

KILLS = {
    # Between two optimizer steps, after checkpoint-10 and before checkpoint-20.
    "mid-epoch": """
class KillAtStep(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 15:
            die()
callbacks.append(KillAtStep())
""",
    # checkpoint-20's weights are written, its optimizer, scheduler and trainer state are not.
    "checkpoint": """
import torch
real_save = torch.save
def save(obj, f, *args, **kwargs):
    if str(f).endswith("optimizer.pt") and Path(f).parent.name == "checkpoint-20":
        die()
    return real_save(obj, f, *args, **kwargs)
torch.save = save
""",
    # The final files are being staged: all but the card are written.
    "final-staging": """
import hf_spam.hub.rendering
hf_spam.hub.rendering.render_model_card = lambda *args, **kwargs: die()
""",
    # The staged final files are being moved into place: the weights have just arrived.
    "final-moves": """
real_replace = os.replace
def replace(source, target):
    real_replace(source, target)
    staged = Path(source).parent.name.startswith({staging!r})
    if staged and Path(target).name == "model.safetensors":
        if not Path(target).parent.name.startswith({staging!r}):
            die()
os.replace = replace
""",
}


def _run_args(spam_csv: Path, out: Path) -> list[str]:
    extra = ("--save_strategy", "steps", "--save_steps", "10", "--num_train_epochs", "2")
    return tiny_args(spam_csv, out, *extra, "--config_overrides", TINY_NO_KEY_BIAS)


@pytest.fixture(scope="module")
def uninterrupted(spam_csv, tmp_path_factory) -> dict[str, torch.Tensor]:
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    train(*parse(_run_args(spam_csv, out)))
    return load_file(out / "model.safetensors")


def _kill(spam_csv: Path, out: Path, moment: str) -> None:
    setup = KILLS[moment].format(staging=FINAL_STAGING)
    script = KILLED_RUN.format(
        tests=str(ROOT / "tests"), setup=setup, argv=_run_args(spam_csv, out)
    )
    proc = _child(script)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]


def _assert_same_weights(expected: dict[str, torch.Tensor], out: Path) -> None:
    got = load_file(out / "model.safetensors")
    assert set(got) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, atol=1e-6, rtol=0, msg=key)


def _assert_not_a_model_yet(out: Path) -> None:
    """No card (the mark of a finished folder), and no loader takes the folder for a model."""
    assert not (out / "README.md").exists()
    with pytest.raises(ModelLoadError) as info:
        check_model_folder(out)
    assert "\n" not in str(info.value)


def _resume(spam_csv: Path, out: Path, caplog) -> str:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hf_spam.training.outputs"):
        train(*parse(_run_args(spam_csv, out) + ["--resume_from_checkpoint", "last"]))
    return caplog.text


def _assert_finished(out: Path) -> None:
    assert not list(out.glob(FINAL_STAGING_GLOB))
    assert check_model_folder(out) == out
    assert (out / "README.md").is_file() and (out / "all_results.json").is_file()


@pytest.mark.slow
def test_kill_mid_epoch_then_resume(spam_csv, tmp_path, uninterrupted, caplog):
    out = tmp_path / "run"
    _kill(spam_csv, out, "mid-epoch")
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-10"]
    _assert_not_a_model_yet(out)
    log = _resume(spam_csv, out, caplog)
    assert f"Resuming from {out / 'checkpoint-10'}" in log
    _assert_same_weights(uninterrupted, out)
    _assert_finished(out)


@pytest.mark.slow
def test_kill_while_writing_a_checkpoint_then_resume_skips_it(
    spam_csv, tmp_path, uninterrupted, caplog
):
    out = tmp_path / "run"
    _kill(spam_csv, out, "checkpoint")
    partial = out / "checkpoint-20"
    assert (partial / "model.safetensors").is_file() and not (partial / "optimizer.pt").exists()
    log = _resume(spam_csv, out, caplog)
    assert f"Skipping incomplete checkpoint {partial}: missing or unreadable optimizer.pt" in log
    assert f"Resuming from {out / 'checkpoint-10'}" in log
    _assert_same_weights(uninterrupted, out)
    _assert_finished(out)


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["final-staging", "final-moves"])
def test_kill_while_saving_the_final_folder_then_resume(
    spam_csv, tmp_path, uninterrupted, caplog, moment
):
    out = tmp_path / "run"
    _kill(spam_csv, out, moment)
    # the kill left its staging folder
    assert any(any(p.iterdir()) for p in out.glob(FINAL_STAGING_GLOB))
    if moment == "final-moves":
        assert (out / "model.safetensors").is_file()  # some files arrived, the card did not
    _assert_not_a_model_yet(out)
    predict = subprocess.run(
        [sys.executable, "-m", "hf_spam.cli", "predict", "--model", str(out), "hi"],
        env=_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert predict.returncode == 1
    assert f"{out} is not a complete model folder: its run was stopped while saving it" in (
        _error_line(predict.stderr)
    )
    _resume(spam_csv, out, caplog)
    _assert_same_weights(uninterrupted, out)
    _assert_finished(out)


def test_an_interrupted_final_save_is_refused_by_loaders(tmp_path):
    """Fast check of what the slow kill tests rely on: staged files make a folder incomplete,
    an empty staging folder (a kill after the card arrived) does not."""
    folder = random_model(tmp_path / "model")
    staging = folder / f"{FINAL_STAGING}-k2x9.tmp"
    staging.mkdir()
    assert check_model_folder(folder) == folder
    shutil.copy(folder / "config.json", staging / "config.json")
    with pytest.raises(ModelLoadError, match="stopped while saving it"):
        check_model_folder(folder)


# ------------------------------------------------------------------------------------------------
# Input a real process gets that the in-process suite only imitates
# ------------------------------------------------------------------------------------------------


def test_binary_bytes_on_real_stdin_give_one_line(tmp_path, tiktoken_available):
    """The interpreter's own stdin decoding (strict UTF-8), not a test's wrapper around it."""
    model = random_model(tmp_path / "model")
    out = tmp_path / "predictions.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "hf_spam.cli", "predict", "--model", str(model), "--output",
         str(out)],
        input=b"fine\n\xff\xfe\x00\x81\n", env={**_env(), "PYTHONIOENCODING": "utf-8"},
        capture_output=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1
    assert (
        _error_line(proc.stderr.decode()) == "error: stdin, line 2: not UTF-8 text (binary input?)"
    )
    assert not out.exists() and not _leftovers(out)
