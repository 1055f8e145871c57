"""`hf-spam benchmark speed|bulk|scale|serve`: the benchmark tables, one subcommand each.

    hf-spam benchmark speed --dataset ../shared/data/SMSSpamCollection          # full
    hf-spam benchmark speed --dataset ../shared/data/SMSSpamCollection --quick  # reduced
    hf-spam benchmark bulk --dataset ../shared/data/SMSSpamCollection   # bulk prediction
    hf-spam benchmark scale [--quick]   # the trunk feature store at IMDb-like sizes
    hf-spam benchmark serve [--quick] [--requests 100000]   # hf-spam serve under load

`hf-spam benchmark [flags]` without a table runs `speed`, and `--bulk` / `--scale` name the other
two, as before the subcommands. Each table is a module of `hf_spam.benchmarks`; see
`hf_spam/benchmarks/speed.py` for what each row measures.
"""

from __future__ import annotations

import difflib
import importlib
import os

from ..benchmarks.runner import ROW_REQUEST, run_requested_row
from ..errors import UsageError
from .arguments import parser_for

#: Subcommand -> its table's module (imported when it runs, or for `--help`).
TABLES = {name: f"hf_spam.benchmarks.{name}" for name in ("speed", "bulk", "scale", "serve")}
DEFAULT_TABLE = "speed"
#: The spellings from before the subcommands: `hf-spam benchmark --scale [flags]`.
TABLE_SWITCHES = {"--bulk": "bulk", "--scale": "scale"}


def summary(table: str) -> str:
    """The first line of the table module's docstring."""
    return importlib.import_module(TABLES[table]).__doc__.split("\n")[0]


def _help() -> str:
    width = max(map(len, TABLES))
    return "\n".join([
        "usage: hf-spam benchmark <table> [flags]   (hf-spam benchmark <table> --help lists its "
        "flags)",
        "",
        "tables:",
        *(f"  {name:<{width}}  {summary(name)}" for name in TABLES),
        "",
        f"Without a table, `hf-spam benchmark [flags]` runs {DEFAULT_TABLE}; "
        f"{' and '.join(TABLE_SWITCHES)} name the other two.",
    ])  # fmt: skip


def table_of(argv: list[str]) -> tuple[str, list[str]]:
    """The table `argv` names (a subcommand, an old `--bulk`/`--scale` switch, or none: speed)
    and the table's own flags."""
    if argv and argv[0] in TABLES:
        return argv[0], argv[1:]
    switches = sorted({TABLE_SWITCHES[arg] for arg in argv if arg in TABLE_SWITCHES})
    if len(switches) > 1:
        raise UsageError("--bulk and --scale: one table at a time (hf-spam benchmark bulk|scale)")
    if argv and not argv[0].startswith("-"):
        close = difflib.get_close_matches(argv[0], TABLES, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise UsageError(f"unknown table {argv[0]!r}; {hint}choose from {', '.join(TABLES)}")
    if switches:
        return switches[0], [arg for arg in argv if arg not in TABLE_SWITCHES]
    return DEFAULT_TABLE, argv


def run(argv: list[str]) -> int:
    request = os.environ.pop(ROW_REQUEST, None)
    if request:  # one row, in the process the runner started for it
        run_requested_row(request)
        return 0
    if argv[:1] in (["-h"], ["--help"]):
        print(_help())
        return 0
    # The table is picked here, then parsed by its own parser: argparse's subparsers fill one
    # namespace, not the dataclasses HfArgumentParser builds.
    table, flags = table_of(argv)
    module = importlib.import_module(TABLES[table])
    parser = parser_for(f"benchmark {table}", (module.ARGUMENTS,), summary(table))
    (args,) = parser.parse(flags)
    module.main(args)
    return 0
