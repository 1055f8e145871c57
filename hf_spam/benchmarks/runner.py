"""The one runner of every benchmark table: each row in its own process, its record and peak
memory back, the machine header over the table.

A row runs in a fresh interpreter, so its peak resident memory and its warm-up are its own.
`run_row` writes the row's request (its table, its name, the table's arguments and the call's
options) to a JSON file and starts `python -m hf_spam.cli benchmark` with that file's path in
the environment variable `ROW_REQUEST`, not on the command line: the public flags stay the
user's, and the row's process ends in the command's one error path, so a failing row prints one
`error:` line and the benchmark exits with its status. The row's process writes what its row
function returned to `record-rank<N>.json` (one per rank under torchrun); `measure` brings back
the process's wall-clock seconds and peak resident memory.

A table module names its arguments dataclass `ARGUMENTS` and its rows `ROWS` (`registry`).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import HfSpamError
from ..files import write_json
from ..hardware import cpu_name

#: The environment variable that makes `hf-spam benchmark` run one row (its request file).
ROW_REQUEST = "HF_SPAM_BENCHMARK_ROW"


@dataclass(frozen=True)
class Row:
    """One row of a table: its name (what `--rows` and the request call it), what it measures
    (the label the table prints), and the function that measures it in the row's own process:
    `function(args, **options)` returns the record, a dataclass or a dict of JSON values.
    `processes` > 1 starts the row under `torchrun`, one process per rank."""

    name: str
    what: str
    function: Callable[..., Any]
    options: Mapping[str, Any] = field(default_factory=dict)
    processes: int = 1


def registry(*rows: Row) -> dict[str, Row]:
    """A table's rows by name, in the order the table prints them."""
    return {row.name: row for row in rows}


@dataclass
class Measured:
    """One process as its parent saw it: wall-clock seconds from start to exit, and the peak
    resident memory of the process (and of the processes it waited for)."""

    seconds: float
    peak_memory_mb: float


@dataclass
class RowResult(Measured):
    """A row's records (one per rank) and its process's measurements."""

    records: list[dict[str, Any]] = field(default_factory=list)


class RowFailed(HfSpamError):
    """A row's process died without saying why (a signal: out of memory, Ctrl-C elsewhere)."""


#: Started by `measure` (with `python -I -S`: the standard library only), it starts the command,
#: waits for it and writes its exit status, seconds and peak memory to the file it is given.
#: Linux carries a process's peak resident size across `exec` into the program it starts, so a
#: command started by the benchmark itself (hundreds of MB of torch, models and data) would
#: report at least the benchmark's peak; started from this small process it reports its own.
STARTER = """
import json, os, subprocess, sys, time
report, command = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
while True:
    try:
        _, status, usage = os.wait4(process.pid, 0)  # Popen.wait has no rusage
        break
    except KeyboardInterrupt:  # Ctrl-C reaches the command too: its status says how it ended
        pass
seconds = time.perf_counter() - start
with open(report, "w") as handle:
    json.dump({"status": os.waitstatus_to_exitcode(status), "seconds": seconds,
               "maxrss_kb": usage.ru_maxrss}, handle)
"""


def measure(
    command: Sequence[str], env: Mapping[str, str] | None = None, what: str = ""
) -> Measured:
    """Run `command` to its end, its output discarded and its errors shown, and measure it: the
    wall-clock seconds from its start to its exit, and the peak resident memory of the process
    (and of the processes it waited for), through `STARTER`.

    A command that fails stops the benchmark with its exit status (`SystemExit`): hf_spam's
    commands have printed their one error line already. One killed by a signal printed nothing:
    `RowFailed` names it (`what`, default the command).
    """
    what = what or " ".join(command)
    with tempfile.TemporaryDirectory(prefix="hf_spam-measure-") as folder:
        report = Path(folder) / "measured.json"
        starter = [sys.executable, "-I", "-S", "-c", STARTER, str(report), *command]
        if subprocess.run(starter, env=env).returncode or not report.is_file():
            raise RowFailed(f"{what}: could not be started and measured")
        measured = json.loads(report.read_text(encoding="utf-8"))
    if measured["status"] < 0:
        name = signal.Signals(-measured["status"]).name
        raise RowFailed(f"{what}: its process was killed ({name})")
    if measured["status"]:
        raise SystemExit(measured["status"])
    return Measured(measured["seconds"], measured["maxrss_kb"] / 1024)  # Linux counts KiB


def run_row(
    table: str,
    row: Row,
    args: Any,
    options: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> RowResult:
    """Run `row` of the table module `table` (its `__name__`) in a fresh process, with the
    table's `args` (a dataclass) and the call's `options` (JSON values, added to the row's)."""
    launcher = [sys.executable]
    if row.processes > 1:
        launcher += ["-m", "torch.distributed.run", "--nproc_per_node", str(row.processes)]
    with tempfile.TemporaryDirectory(prefix="hf_spam-row-") as folder:
        request = {"table": table, "row": row.name, "args": dataclasses.asdict(args),
                   "options": dict(options or {}), "records": folder}  # fmt: skip
        path = write_json(Path(folder) / "request.json", request)
        child_env = {**os.environ, **(env or {}), ROW_REQUEST: str(path)}
        command = [*launcher, "-m", "hf_spam.cli", "benchmark"]
        measured = measure(command, env=child_env, what=f"row {row.name}")
        files = sorted(Path(folder).glob("record-rank*.json"), key=_rank)
        records = [json.loads(p.read_text(encoding="utf-8")) for p in files]
    return RowResult(measured.seconds, measured.peak_memory_mb, records)


def _rank(path: Path) -> int:
    return int(path.stem.removeprefix("record-rank"))


def run_requested_row(request_path: str) -> None:
    """In the row's process: run the row the request names, write its record."""
    request = json.loads(Path(request_path).read_text(encoding="utf-8"))
    table = importlib.import_module(request["table"])
    row = table.ROWS[request["row"]]
    args = table.ARGUMENTS(**request["args"])
    torch.manual_seed(123)
    record = row.function(args, **row.options, **request["options"])
    if dataclasses.is_dataclass(record):
        record = dataclasses.asdict(record)
    rank = os.environ.get("RANK", "0")  # torchrun's, one process per rank
    write_json(Path(request["records"]) / f"record-rank{rank}.json", record)


# ------------------------------------------------------------------------------------------------
# What every table prints or runs the same way
# ------------------------------------------------------------------------------------------------


def machine_header(*details: str, cpu: Iterable[str] = ()) -> str:
    """The line over a table: the CPU's model and cores (with the table's `cpu` notes), torch's
    version and threads, then the table's own `details`."""
    notes = "".join(f", {note}" for note in cpu)
    machine = f"{cpu_name()} ({os.cpu_count()} CPUs{notes}), torch {torch.__version__}"
    return ", ".join([machine, f"{torch.get_num_threads()} threads", *details])


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: a busy machine measures slower."""
    return ", ".join(f"{load:.1f}" for load in os.getloadavg())


def progress(message: str) -> None:
    """A line on stderr before each long step (stdout carries the table)."""
    print(f"{message} ...", file=sys.stderr, flush=True)


def training_flags(output_dir: str, epochs: int, trunk_cache_dir: str, *extra: str) -> list[str]:
    """The `hf-spam train` flags of every benchmarked training run: GPT-2's shape with random
    weights (the compute is that of pretrained ones), and nothing during training that the
    measurement would count: no evaluation, checkpoints, logging or progress bars. The run's
    own trunk store folder: one left by an earlier run would skip the trunk pass."""
    return [
        "--model_name_or_path", "openai-community/gpt2", "--init", "random",
        "--output_dir", output_dir, "--overwrite_output_dir", "true",
        "--num_train_epochs", str(epochs), "--eval_strategy", "no", "--save_strategy", "no",
        "--eval_on_train", "false", "--disable_tqdm", "true", "--logging_strategy", "no",
        "--report_to", "none", "--trunk_cache_dir", str(trunk_cache_dir), *extra,
    ]  # fmt: skip


__all__ = [
    "ROW_REQUEST",
    "STARTER",
    "Measured",
    "Row",
    "RowFailed",
    "RowResult",
    "load_average",
    "machine_header",
    "measure",
    "progress",
    "registry",
    "run_requested_row",
    "run_row",
    "training_flags",
]
