"""The project's errors: one base class, so every command reports them the same way.

Each error's message is the one line a user sees (`error: <message>`): it names the file, row,
column, key or flag at fault and says what was expected. `exit_code` is the command's exit
status: 2 for bad usage (flags and arguments that cannot work), 1 for a failure while running
(bad data, an unreadable checkpoint, a refused upload), 75 when another process is writing
the same output (try again later). The classes also derive from the
built-in exception a caller would have caught before they existed (`ValueError`, `OSError`,
...), so `except ValueError` keeps working.
"""

from __future__ import annotations

import re
import socket

#: What a failure to reach the network is called in every message.
OFFLINE = "the network cannot be reached (offline)"


class HfSpamError(Exception):
    """Base of every error hf_spam raises on purpose; the message is meant for the user."""

    exit_code: int = 1


class UsageError(HfSpamError, ValueError):
    """Flags or arguments that cannot work (together), found before any work starts."""

    exit_code = 2


class DataError(HfSpamError, ValueError):
    """Input data that cannot be used; the message names the file (or split), row and column."""


class CheckpointError(HfSpamError, ValueError):
    """A GPT-2 checkpoint that cannot be mapped onto the model; the message names the key."""


class ModelLoadError(HfSpamError, OSError):
    """A model that cannot be loaded: the message names the missing file or the unknown repo."""


class HubError(HfSpamError, RuntimeError):
    """Sharing cannot proceed: no token, a malformed repo id, or the Hub refused the upload."""


class OutputExistsError(UsageError, FileExistsError):
    """An output folder or file exists and is not to be replaced (no --overwrite...)."""


class OutputBusyError(HfSpamError, BlockingIOError):
    """Another process is writing the same output folder or file (it holds its lock). Exit
    status 75, sysexits' EX_TEMPFAIL: nothing is wrong with the command; it can run later."""

    exit_code = 75


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (what `docker stop`, systemd and job schedulers send), raised where the
    program stands as Ctrl-C is, so every clean-up that Ctrl-C runs runs for them too."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


# ----------------------------------------------------------------------------------------------
# Describing a failure
# ----------------------------------------------------------------------------------------------


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


def first_line(err: BaseException | str) -> str:
    """The first non-empty line of a message (libraries' messages run over several lines); an
    exception without one is named by its type."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else ("" if isinstance(err, str) else type(err).__name__)


__all__ = [
    "CheckpointError",
    "DataError",
    "HfSpamError",
    "HubError",
    "ModelLoadError",
    "OutputExistsError",
    "Terminated",
    "UsageError",
    "first_line",
    "is_network_failure",
    "unreachable_url",
]
