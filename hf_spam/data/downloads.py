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
import re
import socket
from pathlib import Path

from ..errors import DataError

#: What a failure to reach the network is called in every message of this wing.
OFFLINE = "the network cannot be reached (offline)"


class FetchError(DataError, ConnectionError):
    """Something the data needs could not be fetched; the message names it and what to pass
    instead. A `ConnectionError` too, as the download errors it replaces were."""


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _chain(err: BaseException) -> list[BaseException]:
    """`err` and the exceptions it was raised from (or while handling), outermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def is_network_failure(err: BaseException) -> bool:
    """Whether `err`, or an exception it was raised from, says the network cannot be reached.

    huggingface_hub's offline mode and its "not on the Hub, not in the cache" error, and the
    socket errors below every HTTP client's own (refused, unknown host, timed out), so it
    holds whichever client (httpx, aiohttp, requests) raised.
    """
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    network = (ConnectionError, TimeoutError, socket.gaierror)
    types = (*network, LocalEntryNotFoundError, OfflineModeIsEnabled)
    return any(isinstance(current, types) for current in _chain(err))


def unreachable_url(err: BaseException) -> str | None:
    """The URL a network failure was fetching, from its request or its message, if any names one."""
    for current in _chain(err):
        try:
            url = getattr(getattr(current, "request", None), "url", None)  # requests, httpx
        except RuntimeError:  # httpx raises when the error has no request
            url = None
        found = re.search(r"https?://[^\s'\"]+", str(url or current))
        if found:
            return found.group(0).rstrip(".,;:)")
    return None


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


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
            why = _first_line(err)
        raise FetchError(f"could not fetch {what} from {url}: {why}; {instead}") from err


__all__ = [
    "OFFLINE",
    "FetchError",
    "fetch_url",
    "file_sha256",
    "is_network_failure",
    "unreachable_url",
]
