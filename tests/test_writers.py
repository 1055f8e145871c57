"""Two writers at once, and stop signals at exact points of the commands.

Every case runs the real command in a child process (`hf_spam.cli.main`), with a hook that holds
it at one point (a file to wait for) or sends it SIGTERM there, as `docker stop` would. What must
hold: a second writer is refused at once with one line naming the output and the holder's
process id (exit 75), the first finishes a complete model; a stopped command exits 143 with one
line and leaves no temporary file, folder or lock; the next run resumes or redoes the work and
removes what a killed (SIGKILL) run left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import ROOT, hold_lock, tiny_args, trained_model

from hf_spam.files import FINAL_STAGING_GLOB, check_model_folder

CHILD = """
import os, signal, sys, time
from pathlib import Path
from hf_spam.cli import main

def stop(signum=signal.SIGTERM):
    os.kill(os.getpid(), signum)  # as `docker stop` (SIGTERM) or the machine going away (SIGKILL)

def hold(signal_file, release_file):
    Path(signal_file).touch()
    deadline = time.monotonic() + 120
    while not Path(release_file).exists() and time.monotonic() < deadline:
        time.sleep(0.05)

def hooked(module, name, before):
    import importlib
    module = importlib.import_module(module)
    original = getattr(module, name)
    def wrapper(*args, **kwargs):
        before()
        return original(*args, **kwargs)
    setattr(module, name, wrapper)

{setup}
sys.exit(main({argv!r}))
"""


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_SPAM_DEBUG", None)
    return env


def _start(argv: list[str], setup: str = "") -> subprocess.Popen:
    script = CHILD.format(setup=setup, argv=[str(a) for a in argv])
    return subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def _run(argv: list[str], setup: str = "") -> subprocess.CompletedProcess:
    process = _start(argv, setup)
    stdout, stderr = process.communicate(timeout=600)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _last_line(stderr: str) -> str:
    return stderr.strip().splitlines()[-1]


def _wait_for(path: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"exited {process.returncode} first: {process.stderr.read()[-3000:]}")
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _train_args(spam_csv: Path, out: Path, *extra: str) -> list[str]:
    fast = ("--num_train_epochs", "1", "--save_strategy", "no", "--eval_on_train", "false")
    return ["train", *tiny_args(spam_csv, out, *fast, *extra)]


def _assert_busy(result: subprocess.CompletedProcess, flag: str, out: Path, pid: int) -> None:
    """Refused as a second writer: exit 75, one line naming the output and the holder."""
    assert result.returncode == 75, result.stderr[-3000:]
    assert _last_line(result.stderr).startswith(
        f"error: {flag} {out} is being written by process {pid} ("
    )


def _no_temporaries(folder: Path) -> list[str]:
    """Hidden temporaries, staging folders and locks left in `folder` (and none is expected)."""
    return sorted(p.name for p in folder.glob(".*")) + sorted(
        p.name for p in folder.glob(f"*/{FINAL_STAGING_GLOB}")
    )


# ------------------------------------------------------------------------------------------------
# Two writers
# ------------------------------------------------------------------------------------------------


def test_train_into_a_folder_another_process_writes_is_refused_at_once(spam_csv, tmp_path):
    out = tmp_path / "run"
    holder = hold_lock(out, "--output_dir")
    try:
        result = _run(_train_args(spam_csv, out))
    finally:
        holder.kill()
        holder.wait()
    _assert_busy(result, "--output_dir", out, holder.pid)
    assert "Trainable parameters" not in result.stdout  # refused before the model was built
    assert not out.exists()


def test_two_trains_into_one_folder_end_with_one_model_and_one_refusal(spam_csv, tmp_path):
    """The interleaving that lost both models: the second run arrives while the first is
    staging its final files. The second is refused; the first finishes untouched."""
    out = tmp_path / "run"
    saving, release = tmp_path / "a-saving", tmp_path / "b-done"
    first = _start(
        _train_args(spam_csv, out),
        f"hooked('hf_spam.training.run', 'save_final_outputs', "
        f"lambda: hold({str(saving)!r}, {str(release)!r}))",
    )
    try:
        _wait_for(saving, first)
        second = _run(_train_args(spam_csv, out))  # busy comes first, not "not empty"
        release.touch()
        _, first_err = first.communicate(timeout=600)
    finally:
        first.kill()
    _assert_busy(second, "--output_dir", out, first.pid)
    assert first.returncode == 0, first_err[-3000:]
    assert check_model_folder(out) == out and (out / "README.md").is_file()
    assert _no_temporaries(out) == [] and _no_temporaries(tmp_path) == []


def test_predict_into_a_file_another_process_writes_is_refused(
    tmp_path, tmp_path_factory, spam_csv
):
    model = trained_model(tmp_path_factory, spam_csv)
    out = tmp_path / "p.jsonl"
    holder = hold_lock(out, "--output")
    try:
        result = _run(["predict", "--model", model, "--output", out, "WIN a prize"])
    finally:
        holder.kill()
        holder.wait()
    _assert_busy(result, "--output", out, holder.pid)
    assert not out.exists()


# ------------------------------------------------------------------------------------------------
# SIGTERM at exact points, then the next run
# ------------------------------------------------------------------------------------------------


def test_sigterm_while_building_the_trunk_store_leaves_nothing_and_the_rerun_builds_it(
    spam_csv, tmp_path
):
    out, cache = tmp_path / "run", tmp_path / "trunk-cache"
    argv = _train_args(spam_csv, out, "--frozen_trunk_cache", "true", "--trunk_cache_dir", cache)
    stopped = _run(argv, "hooked('hf_spam.features.build', 'save_file', stop)")
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    assert _last_line(stopped.stderr) == "error: terminated (SIGTERM)"
    assert list(cache.iterdir()) == []  # no half-built store, no temporary folder, no lock
    assert not out.exists() or not any(out.iterdir())
    rerun = _run(argv)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert check_model_folder(out) == out
    assert len([p for p in cache.iterdir() if not p.name.startswith(".")]) == 1  # the store


def test_sigterm_mid_training_then_resume_finishes_the_run(spam_csv, tmp_path):
    out = tmp_path / "run"
    argv = ["train", *tiny_args(spam_csv, out, "--save_strategy", "steps", "--save_steps", "5",
                                "--eval_on_train", "false", "--num_train_epochs", "2")]  # fmt: skip
    setup = """
from transformers import TrainerCallback
class StopAtStep(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 7:
            stop()
import hf_spam.training.run as run
real_train = run._train
run._train = lambda *a: real_train(*a[:3], [StopAtStep()], a[4])
"""
    stopped = _run(argv, setup)
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    assert _last_line(stopped.stderr) == "error: terminated (SIGTERM)"
    assert (out / "checkpoint-5").is_dir() and not (out / "README.md").exists()
    assert _no_temporaries(out) == [] and _no_temporaries(tmp_path) == []
    resumed = _run([*argv, "--resume_from_checkpoint", "last"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert check_model_folder(out) == out


@pytest.fixture
def evaluate_argv(tmp_path, tmp_path_factory, spam_csv):
    model = trained_model(tmp_path_factory, spam_csv)
    return ["evaluate", "--model", model, "--dataset", spam_csv, "--output_dir", tmp_path / "ev"]


def test_sigterm_while_evaluate_writes_its_report_leaves_nothing(tmp_path, evaluate_argv):
    stopped = _run(evaluate_argv, "hooked('hf_spam.cli.evaluate', 'write_evaluation_report', stop)")
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    assert _last_line(stopped.stderr) == "error: terminated (SIGTERM)"
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no report, temporary or lock
    assert _run(evaluate_argv).returncode == 0


def test_what_a_killed_evaluate_left_is_removed_by_the_next_one(tmp_path, evaluate_argv):
    killed = _run(
        evaluate_argv,
        "hooked('hf_spam.cli.evaluate', 'write_evaluation_report', lambda: stop(signal.SIGKILL))",
    )
    assert killed.returncode == -signal.SIGKILL
    left = sorted(p.name for p in tmp_path.iterdir())
    assert ".ev.lock" in left and any(name.startswith(".ev.tmp-") for name in left), left
    rerun = _run(evaluate_argv)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ev"]
    assert (tmp_path / "ev" / "eval_report.json").is_file()
