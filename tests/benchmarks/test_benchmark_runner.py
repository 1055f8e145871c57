"""The one runner: a row in its own process, its record and its peak memory back, its failure as
the command's one error line. The rows here are a small table written for these tests, so each
child process costs an interpreter start and no model."""

from __future__ import annotations

import os
import sys
import textwrap

import pytest

from hf_spam.benchmarks import runner
from hf_spam.benchmarks.runner import RowFailed, run_row

TABLE = "runner_test_table"
SOURCE = """
import os
import signal
from dataclasses import dataclass

from hf_spam.benchmarks.runner import Row, registry
from hf_spam.errors import DataError


@dataclass
class Arguments:
    megabytes: int = 0


def hold(args, fixed="", given=""):
    block = bytes([1]) * (args.megabytes << 20)  # written, so resident
    with open("/proc/self/status") as status:  # the kernel's high-water mark of this program
        own_peak = next(int(l.split()[1]) for l in status if l.startswith("VmHWM")) / 1024
    return {"megabytes": len(block) >> 20, "fixed": fixed, "given": given, "pid": os.getpid(),
            "rank": os.environ.get("RANK"), "own_peak_mb": own_peak}


def fail(args):
    raise DataError("tiny.csv, line 3: no tab found")


def die(args):
    os.kill(os.getpid(), signal.SIGKILL)


ARGUMENTS = Arguments
ROWS = registry(
    Row("hold", "holds --megabytes in memory", hold, {"fixed": "from the table"}),
    Row("fail", "fails as bad data does", fail),
    Row("die", "is killed", die),
    Row("ranks", "one record per rank", hold, processes=2),
)
"""


@pytest.fixture
def table(tmp_path, monkeypatch):
    """The test table, importable here and in the rows' processes (through PYTHONPATH)."""
    (tmp_path / f"{TABLE}.py").write_text(textwrap.dedent(SOURCE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), *sys.path]))
    import runner_test_table

    return runner_test_table


def test_a_row_runs_in_its_own_process_and_its_memory_is_its_own(table, monkeypatch):
    """The record comes back as the row returned it, options from the table and the call
    merged. The peak memory is that process's own, as the kernel's high-water mark of the
    program reads at the end of its row (`VmHWM`): it holds what the row held, and not what
    the process that started it held (a program started straight from a process inherits that
    process's peak in its `ru_maxrss`). The request travels in the environment: the process's
    command line is the command's, with no internal flag."""
    commands, real = [], runner.measure

    def spy(command, env=None, what=""):
        commands.append((command, env[runner.ROW_REQUEST]))
        return real(command, env, what)

    monkeypatch.setattr(runner, "measure", spy)
    ballast = bytes([1]) * (2000 << 20)  # this process's peak: 2 GB above its imports
    small = run_row(TABLE, table.ROWS["hold"], table.Arguments(megabytes=0))
    large = run_row(TABLE, table.ROWS["hold"], table.Arguments(800), {"given": "by the call"})
    del ballast
    record = large.records[0]
    assert len(large.records) == 1 and record["pid"] not in (os.getpid(), small.records[0]["pid"])
    assert (record["megabytes"], record["fixed"], record["given"], record["rank"]) == (
        800,
        "from the table",
        "by the call",
        None,
    )
    for result in (small, large):
        own = result.records[0]["own_peak_mb"]
        assert own - 5 < result.peak_memory_mb < own + 50  # + writing the record, exiting
    assert small.peak_memory_mb < 2000  # not this process's
    assert large.peak_memory_mb > small.peak_memory_mb + 700  # the 800 MB the row held
    assert large.seconds > 0
    command, request = commands[0]
    assert command == [sys.executable, "-m", "hf_spam.cli", "benchmark"]
    assert request.endswith("request.json") and not os.path.exists(request)  # cleaned up
    assert runner.ROW_REQUEST not in os.environ


def test_a_failing_row_prints_one_error_line_and_exits_with_its_status(table, capfd):
    with pytest.raises(SystemExit) as info:
        run_row(TABLE, table.ROWS["fail"], table.Arguments())
    assert info.value.code == 1
    assert capfd.readouterr().err == "error: tiny.csv, line 3: no tab found\n"


def test_a_killed_row_is_named(table):
    with pytest.raises(RowFailed) as info:
        run_row(TABLE, table.ROWS["die"], table.Arguments())
    assert str(info.value) == "row die: its process was killed (SIGKILL)"


@pytest.mark.slow  # two processes under torchrun
def test_a_row_under_torchrun_gives_one_record_per_rank(table):
    result = run_row(TABLE, table.ROWS["ranks"], table.Arguments(1))
    assert [r["rank"] for r in result.records] == ["0", "1"]
    assert len({r["pid"] for r in result.records}) == 2
