"""Argument parsing shared by every command: `HfArgumentParser`, with errors as `UsageError`.

argparse prints its usage and calls `sys.exit(2)` on a bad flag, and HfArgumentParser raises a
bare `ValueError` for an unknown one; both become one `UsageError` line naming the flag, so the
single error path in `hf_spam.cli` reports them like every other mistake. A `ValueError` from a
dataclass's `__post_init__` (e.g. `TrainingArguments`' own checks) is a usage error too.

`--help` reads by section: each dataclass with an `_argument_group_name` is its own argparse
group (HfArgumentParser's machinery), described by its docstring's first line, and a dataclass
made of such dataclasses (`ModelArguments`) gets one group per part. A command built with
`argument_file=True` (`hf-spam train`) also takes all its flags from one JSON or YAML file, as
transformers' example scripts do: `hf-spam train args.json`.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import yaml
from transformers import HfArgumentParser
from transformers.hf_argparser import string_to_bool

from ..errors import HfSpamError, UsageError

#: A lone argument with one of these endings is an arguments file (`hf-spam train args.json`).
ARGUMENT_FILE_SUFFIXES = (".json", ".yaml", ".yml")
#: The start of argparse's message about a flag's value: `argument --x/--y: `.
_ARGPARSE_FLAG = re.compile(r"^argument --([^/:\s]+)[^:]*: ")


def _one_line(text: str, limit: int = 400) -> str:
    """A multi-line message (TrainingArguments writes some) on one line, cut at `limit`."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@contextmanager
def _dataclass_errors() -> Iterator[None]:
    """A `ValueError`/`TypeError` from a dataclass's `__post_init__`, as one `UsageError` line."""
    try:
        yield
    except HfSpamError:
        raise
    except (ValueError, TypeError) as err:
        raise UsageError(_one_line(str(err))) from err


def argument_groups(dtype: type) -> list[type]:
    """The dataclasses whose fields make `dtype`'s --help sections, in field order: its bases
    that name a group of their own (`ModelArguments` is made of five), else `dtype` itself."""
    parts = [base for base in reversed(dtype.__mro__[1:]) if "_argument_group_name" in vars(base)]
    if not parts:
        return [dtype]
    covered = {f.name for part in parts for f in dataclasses.fields(part)}
    missing = [f.name for f in dataclasses.fields(dtype) if f.init and f.name not in covered]
    if missing:  # a field in the combining class itself would get no flag
        raise TypeError(f"{dtype.__name__}: fields {missing} belong to none of its groups")
    return parts


def group_description(dtype: type) -> str | None:
    """The first line of the dataclass's own docstring (not the one `@dataclass` writes)."""
    doc = vars(dtype).get("__doc__") or ""
    if doc.startswith(f"{dtype.__name__}("):
        return None
    return doc.strip().split("\n")[0].replace("`", "") or None


def _file_problem(err: Exception) -> str:
    """What is wrong with an arguments file, in a few words (the caller names the file)."""
    if isinstance(err, json.JSONDecodeError):
        return f"invalid JSON, line {err.lineno}, column {err.colno}: {err.msg}"
    if isinstance(err, yaml.YAMLError):
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return f"invalid YAML{where}: {getattr(err, 'problem', None) or _one_line(str(err))}"
    if isinstance(err, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(err, FileNotFoundError):
        return "no such file"
    if isinstance(err, IsADirectoryError):
        return "a folder, not an arguments file"
    if isinstance(err, OSError):
        return err.strerror or type(err).__name__
    return _one_line(str(err))


def _unique_keys(pairs: Iterable[tuple[Any, Any]]) -> dict[Any, Any]:
    values: dict[Any, Any] = {}
    for key, value in pairs:
        if key in values:
            raise UsageError(f"key {key!r} is given twice")
        values[key] = value
    return values


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        _unique_keys((self.construct_object(key, deep=deep), None) for key, _ in node.value)
        return super().construct_mapping(node, deep=deep)


def read_arguments_file(path: str) -> dict[str, Any]:
    """The flags of a JSON (`.json`) or YAML file, as `HfArgumentParser.parse_dict` takes them.

    Read here rather than by HfArgumentParser's `parse_json_file`/`parse_yaml_file`: those keep
    the last value of a key given twice, silently; this refuses it, naming the key.
    """
    with open(path, encoding="utf-8") as handle:
        if path.lower().endswith(".json"):
            return json.load(handle, object_pairs_hook=_unique_keys)
        return yaml.load(handle, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def _as_text(value: str | int | float | bool) -> str:
    """A JSON/YAML scalar as it would be typed on the command line."""
    return str(value).lower() if isinstance(value, bool) else str(value)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """HfArgumentParser's formatter, shorter: a value's name once after all the flag's spellings
    (`--lora_rank, --lora-rank LORA_RANK`, as Python 3.13 prints it), no `(default: None)`."""

    # argparse has no public hook for either: overriding its formatter's methods is the way.
    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        if action.type is string_to_bool and action.metavar is None:
            value = "[true|false]"
        else:
            value = self._format_args(action, self._get_default_metavar_for_optional(action))
        return f"{', '.join(action.option_strings)} {value}"

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.nargs == 0:  # nothing to say / a --no_x switch
            return action.help
        return super()._get_help_string(action)


class ArgumentParser(HfArgumentParser):
    """`HfArgumentParser` that raises `UsageError` instead of printing usage and exiting, shows
    --help by section and, with `argument_file`, reads `prog ARGS.json`."""

    def __init__(
        self, dataclass_types: Iterable[type], *, argument_file: bool = False, **kwargs: Any
    ) -> None:
        self.argument_file = argument_file
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(list(dataclass_types), **kwargs)

    @property
    def usage(self) -> str:
        """The usage given, else `_short_usage` (worked out when shown: after every argument)."""
        return self._usage or self._short_usage()

    @usage.setter
    def usage(self, value: str | None) -> None:
        self._usage = value

    def error(self, message: str):  # argparse's hook for every parse error
        raise UsageError(message)

    def _add_dataclass_arguments(self, dtype: type) -> None:
        # HfArgumentParser titles a dataclass's group; the description and the parts are ours.
        for part in argument_groups(dtype):
            super()._add_dataclass_arguments(part)
            if "_argument_group_name" in vars(part):
                self._action_groups[-1].description = group_description(part)
        for action in self._actions:  # HfArgumentParser gives `--no_x` the help of `--x`
            if action.option_strings[:1] == [f"--no_{action.dest}"]:
                action.help = f"Same as --{action.dest} false."

    def _short_usage(self) -> str:
        """The required flags and positional arguments, then `[flags]`: the sections below list
        the rest (argparse's own usage would list every flag once more, 140 lines for train)."""
        parts = []
        for action in self._actions:
            name = action.metavar or action.dest.upper()
            if action.option_strings and action.required:
                parts.append(f"{action.option_strings[0]} {name}")
            elif not action.option_strings:
                parts.append(f"[{name} ...]" if action.nargs in ("*", "+") else name)
        usage = " ".join(["%(prog)s", *[p for p in parts if p.startswith("-")], "[flags]"])
        usage = " ".join([usage, *[p for p in parts if not p.startswith("-")]])
        if self.argument_file:
            usage += "\n   or: %(prog)s ARGS.json   (or ARGS.yaml: every flag, as name: value)"
        return usage

    def parse(self, argv: list[str]) -> tuple[Any, ...]:
        """The dataclasses (and a namespace of extra arguments, if any), checked.

        Unknown flags are named, with the closest known flag as a hint. With `argument_file`, a
        lone `*.json`/`*.yaml` argument is read by `parse_file`.
        """
        if self.argument_file and len(argv) == 1 and _is_argument_file(argv[0]):
            return self.parse_file(argv[0])
        parsed, remaining = self.parse_known(argv)
        if remaining:
            raise UsageError(self._unknown(remaining))
        return tuple(parsed)

    def parse_known(self, argv: list[str]) -> tuple[tuple[Any, ...], list[str]]:
        """The dataclasses, and the arguments they do not know (passed on elsewhere)."""
        with _dataclass_errors():
            *parsed, remaining = self.parse_args_into_dataclasses(
                args=argv, return_remaining_strings=True, look_for_args_file=False
            )
        return tuple(parsed), list(remaining)

    def parse_file(self, path: str) -> tuple[Any, ...]:
        """The dataclasses from a JSON or YAML file of flag names and values, read by
        HfArgumentParser's `parse_json_file`/`parse_yaml_file`; any mistake is one `UsageError`
        line naming the file (and the key)."""
        try:
            return tuple(self.parse_dict(read_arguments_file(path)))
        except UsageError as err:
            raise UsageError(f"{path}: {err}") from err
        except HfSpamError:  # e.g. an unreadable model folder: its own message and status
            raise
        except (ValueError, OSError, yaml.YAMLError) as err:
            raise UsageError(f"{path}: {_file_problem(err)}") from err

    def parse_dict(self, args: dict[str, Any], allow_extra_keys: bool = False) -> tuple[Any, ...]:
        """HfArgumentParser's `parse_dict` (behind `parse_json_file` and `parse_yaml_file`), with
        the file read as its command line would be: a key that is no flag is named, and scalar
        values go through argparse (types, choices, required flags), so `"context_length": 120`
        is the string the flag gives. Lists and objects pass as they are (`report_to`,
        `lr_scheduler_kwargs`: a file can say what a flag cannot)."""
        if not isinstance(args, dict):
            raise UsageError(f"expected flag names and values, got a {type(args).__name__}")
        fields = set(self._field_names())
        unknown = [key for key in args if key not in fields]
        if unknown and not allow_extra_keys:
            raise UsageError(self._unknown_key(str(unknown[0])))
        scalars = {
            key: value
            for key, value in args.items()
            if key in fields and isinstance(value, (str, int, float, bool))
        }
        command_line = [f"--{key}={_as_text(value)}" for key, value in scalars.items()]
        try:
            namespace, _ = self.parse_known_args(command_line)
        except UsageError as err:  # "argument --x/--y: invalid int value: 'z'" -> "x: ..."
            raise UsageError(_ARGPARSE_FLAG.sub(r"\1: ", str(err))) from err
        values = {**args, **{key: getattr(namespace, key) for key in scalars}}
        with _dataclass_errors():
            return super().parse_dict(values, allow_extra_keys=allow_extra_keys)

    def _unknown(self, remaining: list[str]) -> str:
        flags = [arg for arg in remaining if arg.startswith("-")]
        if not flags:
            files = [arg for arg in remaining if _is_argument_file(arg)]
            if files and self.argument_file:
                return f"{files[0]}: an arguments file comes alone (`{self.prog} {files[0]}`)"
            return f"unexpected argument(s): {' '.join(remaining)}"
        known = [opt for action in self._actions for opt in action.option_strings]
        close = difflib.get_close_matches(flags[0].split("=")[0], known, n=1)
        hint = f"; did you mean {close[0]}?" if close else f"; see `{self.prog} --help`"
        return f"unknown flag {flags[0]}{hint}"

    def _field_names(self) -> list[str]:
        """The keys an arguments file may hold: the dataclasses' fields, as flags name them."""
        return [f.name for t in self.dataclass_types for f in dataclasses.fields(t) if f.init]

    def _unknown_key(self, key: str) -> str:
        close = difflib.get_close_matches(key, self._field_names(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; see `{self.prog} --help`"
        return f"unknown key {key!r}{hint}"


def _is_argument_file(arg: str) -> bool:
    return arg.lower().endswith(ARGUMENT_FILE_SUFFIXES) and not arg.startswith("-")


def parser_for(
    command: str, dataclass_types: Iterable[type], description: str, argument_file: bool = False
) -> ArgumentParser:
    """The parser of `hf-spam <command>`, its --help headed by the command's description; with
    `argument_file`, `hf-spam <command> ARGS.json` works too."""
    return ArgumentParser(
        dataclass_types,
        prog=f"hf-spam {command}",
        description=description,
        argument_file=argument_file,
    )
