"""A machine without network, for a fresh process: Hugging Face's offline switches, or none of
them and every HTTP client sent to a proxy on a closed loopback port (a network that is down).
Its caches are empty folders of the test's own, and tiktoken has no cache at all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .paths import ROOT

#: Nothing listens on the discard port of the loopback address: every connection is refused.
DEAD_PROXY = "http://127.0.0.1:9"
OFFLINE_SWITCHES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def no_network_env(tmp_path: Path, switches: bool = True) -> dict[str, str]:
    """The environment of a process without network: `switches` sets HF_HUB_OFFLINE and
    HF_DATASETS_OFFLINE; without them the network is down (a dead proxy) and the libraries try."""
    env = {key: value for key, value in os.environ.items() if key not in OFFLINE_SWITCHES}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "HF_HOME": str(tmp_path / "hf-home"),
            "HF_MODULES_CACHE": str(tmp_path / "hf-modules"),
            "TIKTOKEN_CACHE_DIR": str(tmp_path / "no-tiktoken-cache"),
            "TOKENIZERS_PARALLELISM": "false",
        }
    )
    if switches:
        env.update(dict.fromkeys(OFFLINE_SWITCHES, "1"))
    else:
        env.update(
            {
                "HTTP_PROXY": DEAD_PROXY,
                "HTTPS_PROXY": DEAD_PROXY,
                "http_proxy": DEAD_PROXY,
                "https_proxy": DEAD_PROXY,
                "NO_PROXY": "",
                "no_proxy": "",
                "HF_HUB_ETAG_TIMEOUT": "5",
                "HF_HUB_DOWNLOAD_TIMEOUT": "5",
            }
        )
    return env


def run_hf_spam(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """`hf-spam <argv>` in a fresh interpreter with `env` (see `no_network_env`)."""
    return subprocess.run(
        [sys.executable, "-m", "hf_spam.cli", *map(str, argv)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def error_lines(stderr: str) -> list[str]:
    """The lines of a command's stderr that report an error (`error: ...`, a traceback)."""
    return [
        line
        for line in stderr.splitlines()
        if line.startswith(("error:", "Traceback")) or "Error:" in line
    ]
