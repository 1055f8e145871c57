"""The `hf-spam` command: `hf-spam <command> [flags]`, one module per command.

    hf-spam train --output_dir runs/spam
    hf-spam predict --model runs/spam "WIN a free prize, call now"
    hf-spam evaluate --model runs/spam --output_dir runs/spam/eval

Each command module exposes `run(argv) -> int`; `scripts/*.py` call `main` with their command's
name. This module is THE error path of every command: whatever a command raises ends here and
is printed as one line, `error: <message>`, on stderr, with exit status 2 for bad usage, 1 for a
failure while running, 130 for Ctrl-C, and 143 / 129 for SIGTERM / SIGHUP (handled as Ctrl-C). `--debug` (anywhere on the command line) or
`HF_SPAM_DEBUG=1` re-raises instead, with the full traceback.
"""

from __future__ import annotations

import errno
import importlib
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import (
    OFFLINE,
    HfSpamError,
    Terminated,
    first_line,
    is_network_failure,
    unreachable_url,
)

#: Command name -> module (imported only when its command runs, so `--help` stays fast).
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("hf_spam.cli.train", "Fine-tune the book's GPT for classification with Trainer."),
    "prepare-data": ("hf_spam.cli.prepare_data", "Prepare a data set as chapter 6 does."),
    "evaluate": ("hf_spam.cli.evaluate", "Evaluate classifiers and write a report."),
    "predict": ("hf_spam.cli.predict", "Classify texts with a trained classifier."),
    "calibrate": (
        "hf_spam.cli.calibrate",
        "Fit a temperature and decision threshold on validation.",
    ),
    "push": ("hf_spam.cli.push", "Upload a trained model folder to the Hugging Face Hub."),
    "convert": ("hf_spam.cli.convert", "Convert an OpenAI GPT-2 checkpoint to the book's GPT."),
    "export": ("hf_spam.cli.export", "Export a trained classifier as ONNX or native GPT-2."),
    "benchmark": ("hf_spam.cli.benchmark", "Speed and memory of the book's workload."),
    "experiments": ("hf_spam.cli.experiments", "The book's table of experiments, row for row."),
    "demo": ("hf_spam.cli.demo", "A Gradio app to try a trained model in the browser."),
    "serve": ("hf_spam.cli.serve", "An HTTP server for a classifier (TEI and Inference API)."),
}
USAGE_EXIT, FAILURE_EXIT, INTERRUPT_EXIT = 2, 1, 130
DEBUG_FLAG = "--debug"
# TrainingArguments has its own `--debug <option>`; with one of these values after it, the flag
# is the Trainer's, not ours.
_TRAINER_DEBUG_VALUES = ("underflow_overflow", "tpu_metrics_debug")


def _help() -> str:
    width = max(map(len, COMMANDS))
    lines = [
        "usage: hf-spam <command> [flags]   (hf-spam <command> --help lists its flags)",
        "",
        "commands:",
        *(f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()),
        "",
        f"{DEBUG_FLAG} (anywhere) or HF_SPAM_DEBUG=1 shows the full traceback of an error.",
    ]
    return "\n".join(lines)


def _split_debug(argv: list[str]) -> tuple[list[str], bool]:
    """`argv` without our `--debug` flag(s), and whether one was there."""
    kept, debug = [], False
    for index, arg in enumerate(argv):
        following = argv[index + 1] if index + 1 < len(argv) else ""
        if arg == DEBUG_FLAG and following not in _TRAINER_DEBUG_VALUES:
            debug = True
        else:
            kept.append(arg)
    return kept, debug


def _os_error(err: OSError) -> str:
    # A failed copy (shutil) names the source first; a write fails at its destination.
    written = err.filename2 if err.errno in (errno.ENOSPC, errno.EFBIG) else None
    where = f"{written or err.filename}: " if written or err.filename else ""
    reason = err.strerror or first_line(str(err)) or type(err).__name__
    if err.errno == errno.ENOSPC:
        return f"{where}no space left on the device; free some space and run again"
    if err.errno == errno.EFBIG:
        return f"{where}file too large (a file-size limit was reached)"
    if err.errno in (errno.EACCES, errno.EPERM):
        return f"{where}permission denied"
    return f"{where}{reason}" if err.filename else first_line(str(err)) or reason


def describe(err: BaseException) -> tuple[int, str]:
    """The exit status and the one-line message for an exception that reached the boundary.

    hf_spam's own errors carry both. Library failures are the safety net for what the library
    functions did not convert where they happen: each is named as well as its exception allows.
    """
    if isinstance(err, HfSpamError):
        return err.exit_code, first_line(str(err))
    if isinstance(err, Terminated):
        return 128 + err.signum, f"terminated ({signal.Signals(err.signum).name})"
    if isinstance(err, KeyboardInterrupt):
        return INTERRUPT_EXIT, "interrupted"
    if is_network_failure(err):
        what = unreachable_url(err) or "what the command needs from the network"
        return FAILURE_EXIT, (
            f"could not fetch {what}: {OFFLINE}, and it is not in the local cache; pass a "
            "local path"
        )
    if isinstance(err, json.JSONDecodeError):
        return FAILURE_EXIT, f"invalid JSON, line {err.lineno}, column {err.colno}: {err.msg}"
    if isinstance(err, OSError):
        return FAILURE_EXIT, _os_error(err)
    if type(err).__name__ == "SafetensorError":
        verb = "could not write" if "serializ" in str(err) else "unreadable"
        return FAILURE_EXIT, f"{verb} safetensors weights: {first_line(str(err))}"
    message = first_line(str(err))
    if isinstance(err, (ValueError, KeyError)) and "model type" in message:
        return FAILURE_EXIT, f"unknown model_type in config.json: {message}"
    return FAILURE_EXIT, (
        f"{type(err).__name__}: {message} (run with {DEBUG_FLAG} for the traceback)"
    )


#: Handled as Ctrl-C is: the command stops where it stands, cleans up, exits 128 + the number.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


@contextmanager
def stop_signals_as_interrupts() -> Iterator[None]:
    """SIGTERM and SIGHUP raise `Terminated` in the main thread while the command runs; a second
    one is ignored, so the clean-up of the first is not cut short (SIGKILL still ends it)."""

    def stop(signum: int, frame: object) -> None:
        for each in STOP_SIGNALS:
            signal.signal(each, signal.SIG_IGN)
        raise Terminated(signum)

    if threading.current_thread() is not threading.main_thread():  # signals reach main only
        yield
        return
    previous = {each: signal.signal(each, stop) for each in STOP_SIGNALS}
    try:
        yield
    finally:
        for each, handler in previous.items():
            signal.signal(each, handler)


def main(argv: list[str] | None = None) -> int:
    """Run `hf-spam <command> [flags]`; return its exit status (0 on success)."""
    argv, debug = _split_debug(list(sys.argv[1:] if argv is None else argv))
    debug = debug or os.environ.get("HF_SPAM_DEBUG", "") not in ("", "0", "false")
    if not argv or argv[0] in ("-h", "--help"):
        print(_help(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else USAGE_EXIT
    command, rest = argv[0], argv[1:]
    try:
        if command not in COMMANDS:
            from ..errors import UsageError

            raise UsageError(f"unknown command {command!r}; choose from {', '.join(COMMANDS)}")
        module = importlib.import_module(COMMANDS[command][0])
        with stop_signals_as_interrupts():
            return module.run(rest)
    except SystemExit as exit:  # --help, or sys.exit inside a command: its status, returned
        if exit.code is None or isinstance(exit.code, int):
            return exit.code or 0
        print(f"error: {first_line(str(exit.code))}", file=sys.stderr)
        return FAILURE_EXIT
    except BaseException as err:
        if debug:
            raise
        code, message = describe(err)
        print(f"error: {message}", file=sys.stderr)
        return code


__all__ = ["COMMANDS", "describe", "main"]
