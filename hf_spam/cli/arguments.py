"""Argument parsing shared by every command: `HfArgumentParser`, with errors as `UsageError`.

argparse prints its usage and calls `sys.exit(2)` on a bad flag, and HfArgumentParser raises a
bare `ValueError` for an unknown one; both become one `UsageError` line naming the flag, so the
single error path in `hf_spam.cli` reports them like every other mistake. A `ValueError` from a
dataclass's `__post_init__` (e.g. `TrainingArguments`' own checks) is a usage error too.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from transformers import HfArgumentParser

from ..errors import HfSpamError, UsageError


def _one_line(text: str, limit: int = 400) -> str:
    """A multi-line message (TrainingArguments writes some) on one line, cut at `limit`."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ArgumentParser(HfArgumentParser):
    """`HfArgumentParser` that raises `UsageError` instead of printing usage and exiting."""

    def error(self, message: str):  # argparse's hook for every parse error
        raise UsageError(message)

    def parse(self, argv: list[str]) -> tuple[Any, ...]:
        """The dataclasses (and a namespace of extra arguments, if any), checked.

        Unknown flags are named, with the closest known flag as a hint.
        """
        parsed, remaining = self.parse_known(argv)
        if remaining:
            raise UsageError(self._unknown(remaining))
        return tuple(parsed)

    def parse_known(self, argv: list[str]) -> tuple[tuple[Any, ...], list[str]]:
        """The dataclasses, and the arguments they do not know (passed on elsewhere)."""
        try:
            *parsed, remaining = self.parse_args_into_dataclasses(
                args=argv, return_remaining_strings=True, look_for_args_file=False
            )
        except HfSpamError:
            raise
        except (ValueError, TypeError) as err:  # raised by a dataclass's __post_init__
            raise UsageError(_one_line(str(err))) from err
        return tuple(parsed), list(remaining)

    def _unknown(self, remaining: list[str]) -> str:
        flags = [arg for arg in remaining if arg.startswith("-")]
        if not flags:
            return f"unexpected argument(s): {' '.join(remaining)}"
        known = [opt for action in self._actions for opt in action.option_strings]
        close = difflib.get_close_matches(flags[0].split("=")[0], known, n=1)
        hint = f"; did you mean {close[0]}?" if close else f"; see `{self.prog} --help`"
        return f"unknown flag {flags[0]}{hint}"


def parser_for(command: str, dataclass_types: Iterable[type], description: str) -> ArgumentParser:
    """The parser of `hf-spam <command>`, its --help headed by the command's description."""
    return ArgumentParser(list(dataclass_types), prog=f"hf-spam {command}", description=description)
