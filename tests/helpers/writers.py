"""Another writer, as a separate process: it holds an output's lock until told to let go."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .paths import ROOT

HOLDER = """
import sys
from hf_spam.files import output_lock
with output_lock(sys.argv[1], sys.argv[2]):
    print("held", flush=True)
    sys.stdin.read()  # until the test closes stdin (or kills this process)
"""


def hold_lock(path: Path, flag: str = "--output_dir") -> subprocess.Popen:
    """A process holding `path`'s lock (returned once it holds it); close its stdin to release
    the lock cleanly, or kill it to leave a stale lock file behind."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), flag],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    return holder
