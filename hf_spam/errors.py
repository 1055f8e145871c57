"""The project's errors: one base class, so every command reports them the same way.

Each error's message is the one line a user sees (`error: <message>`): it names the file, row,
column, key or flag at fault and says what was expected. `exit_code` is the command's exit
status: 2 for bad usage (flags and arguments that cannot work), 1 for a failure while running
(bad data, an unreadable checkpoint, a refused upload). The classes also derive from the
built-in exception a caller would have caught before they existed (`ValueError`, `OSError`,
...), so `except ValueError` keeps working.
"""

from __future__ import annotations


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


__all__ = [
    "CheckpointError",
    "DataError",
    "HfSpamError",
    "HubError",
    "ModelLoadError",
    "OutputExistsError",
    "UsageError",
]
