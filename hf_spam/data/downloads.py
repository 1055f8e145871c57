"""Fetching what the data pipeline does not ship, checking it, and saying so in one line when
the network is not there.

The SMS Spam Collection and GPT-2's BPE files ship inside the package (`bundled/`); only the
IMDb archive (`fetch_url`) and Hub datasets (`datasets.load_dataset`, `hub.py`) come from the
network, and a failure to reach it is a `FetchError` naming what could not be fetched and what
to pass instead, never the HTTP client's own traceback.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..errors import OFFLINE, DataError, first_line, is_network_failure


class FetchError(DataError, ConnectionError):
    """Something the data needs could not be fetched; the message names it and what to pass
    instead. A `ConnectionError` too, as the download errors it replaces were."""


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_url(url: str, cache_dir: str | None, what: str, instead: str) -> Path:
    """`url` downloaded once into the datasets cache (`<cache_dir>/downloads`), its local path.

    A failure is one `FetchError` line: `what` could not be fetched from `url`, why (offline,
    or the server's answer) and `instead`, what to pass.
    """
    import datasets

    download_dir = str(Path(cache_dir) / "downloads") if cache_dir else None
    config = datasets.DownloadConfig(cache_dir=download_dir)
    try:
        return Path(datasets.DownloadManager(download_config=config).download(url))
    except Exception as err:  # noqa: BLE001 - fsspec, aiohttp and huggingface_hub raise many types
        why = f"{OFFLINE}, and it is not in the datasets cache"
        if not is_network_failure(err):
            why = first_line(err)
        raise FetchError(f"could not fetch {what} from {url}: {why}; {instead}") from err


__all__ = ["FetchError", "fetch_url", "file_sha256"]
