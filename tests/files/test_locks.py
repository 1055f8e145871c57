"""One writer per output: the lock beside it, what a second writer is told, stale locks, and the
clean-up of temporaries a stopped writer left. The other writer is a real process (`hold_lock`)."""

from __future__ import annotations

import json
import logging
import os
import signal

import pytest
from helpers import hold_lock

from hf_spam.errors import OutputBusyError
from hf_spam.files import (
    atomic_file,
    atomic_output_dir,
    holds_lock,
    lock_file,
    output_lock,
    remove_leftovers,
    write_text,
)


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock of `tmp_path / "out"`."""
    process = hold_lock(tmp_path / "out", "--output_dir")
    yield process
    process.kill()
    process.wait()


def test_a_second_writer_is_refused_at_once_naming_the_holder(tmp_path, holder):
    out = tmp_path / "out"
    with pytest.raises(OutputBusyError) as info:
        with output_lock(out, "--output_dir"):
            pytest.fail("the block ran while another process held the lock")
    message = str(info.value)
    assert message.startswith(f"--output_dir {out} is being written by process {holder.pid} (")
    assert "wait for it to finish or choose another output" in message
    assert str(lock_file(out)) in message and "\n" not in message
    assert info.value.exit_code == 75


def test_atomic_writes_are_refused_and_leave_the_destination_as_it_was(tmp_path, holder):
    out = tmp_path / "out"
    with pytest.raises(OutputBusyError, match="--save_to_disk"):
        with atomic_output_dir(out, flag="--save_to_disk"):
            pytest.fail("wrote while another process held the lock")
    with pytest.raises(OutputBusyError, match="--output"):
        write_text(out, "mine", flag="--output")
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock"]  # the holder's


def test_the_lock_is_released_and_its_file_removed_when_the_holder_finishes(tmp_path):
    out = tmp_path / "out"
    holder = hold_lock(out)
    holder.stdin.close()
    assert holder.wait(timeout=30) == 0
    assert not lock_file(out).exists()
    with output_lock(out):
        assert holds_lock(out)
        assert json.loads(lock_file(out).read_text())["pid"] == os.getpid()
    assert not lock_file(out).exists() and not holds_lock(out)


def test_a_lock_left_by_a_killed_holder_is_taken_over(tmp_path, caplog):
    """SIGKILL runs no clean-up: the lock file stays, with the dead holder's process id in it,
    but the OS dropped its lock."""
    out = tmp_path / "out"
    holder = hold_lock(out)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert lock_file(out).exists()
    with caplog.at_level(logging.INFO, logger="hf_spam.files"):
        with output_lock(out):
            pass
    assert f"taking over the lock left by process {holder.pid}, no longer running" in caplog.text


def test_the_same_process_may_lock_an_output_it_holds_again(tmp_path):
    """A command holding its output calls helpers that lock it too: that is not a conflict."""
    out = tmp_path / "out"
    with output_lock(out), output_lock(out), atomic_file(out, "--output") as handle:
        handle.write("x")
    assert out.read_text() == "x" and not holds_lock(out)


def test_leftovers_of_a_stopped_writer_are_removed_under_the_lock_only(tmp_path):
    out = tmp_path / "out"
    leftovers = [".out.tmp-a1_b", ".out.tmp-k2x9.tmp", ".out.old-zz9"]
    kept = [".out.x.tmp-a1_b", ".outer.tmp-a1", ".out.lock", "out"]  # other outputs, the lock
    (tmp_path / ".out.tmp-a1_b").mkdir()  # atomic_output_dir's folder
    (tmp_path / ".out.tmp-k2x9.tmp").write_text("part")  # atomic_file's file
    (tmp_path / ".out.old-zz9").mkdir()  # replace_dir's old folder
    for name in kept:
        (tmp_path / name).write_text("keep")
    assert remove_leftovers(out, ".tmp-", ".old-") == []  # without the lock: none is known dead
    with output_lock(out):
        (tmp_path / ".out.lock").write_text("keep")  # our own lock file is never a leftover
        removed = remove_leftovers(out, ".tmp-", ".old-")
    assert sorted(p.name for p in removed) == sorted(leftovers)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(set(kept) - {".out.lock"})


def test_a_write_cleans_up_what_a_killed_write_of_the_same_output_left(tmp_path):
    out = tmp_path / "p.jsonl"
    (tmp_path / ".p.jsonl.tmp-k2x9.tmp").write_text('{"half": ')
    with atomic_file(out, "--output") as handle:
        handle.write("{}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.jsonl"]
