"""`hf-spam benchmark speed|bulk|scale|serve`: one subcommand per table, each with its own --help and
flags; the spellings from before the subcommands run the same tables."""

from __future__ import annotations

import dataclasses
import re

import pytest
from helpers import load_script

from hf_spam.benchmarks import bulk, scale, serve, speed
from hf_spam.cli import main

TABLES = {"speed": speed, "bulk": bulk, "scale": scale, "serve": serve}
#: What only a row's own process used to read, once flags of the public dataclasses.
INTERNAL = ("row", "bulk", "scale", "run_data", "run_output", "run_cache", "run_extra")


def _help(argv: list[str], capsys, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "100")
    capsys.readouterr()
    assert main(argv) == 0
    return capsys.readouterr().out


def test_benchmark_help_lists_the_tables(capsys, monkeypatch):
    text = _help(["benchmark", "--help"], capsys, monkeypatch)
    listed = re.findall(r"^  (\w+)  +(.+)$", text, flags=re.M)
    assert [name for name, _ in listed] == list(TABLES)
    for name, summary in listed:  # each table's own one-line description
        assert summary == TABLES[name].__doc__.splitlines()[0]
    assert text.startswith("usage: hf-spam benchmark <table> [flags]")
    assert _help(["benchmark", "-h"], capsys, monkeypatch) == text


@pytest.mark.parametrize("table", list(TABLES))
def test_each_table_lists_its_own_flags_and_no_internal_one(table, capsys, monkeypatch):
    text = _help(["benchmark", table, "--help"], capsys, monkeypatch)
    assert text.startswith(f"usage: hf-spam benchmark {table} [flags]\n")
    listed = set(re.findall(r"^  --(\w+)", text, flags=re.M))
    fields = {f.name for f in dataclasses.fields(TABLES[table].ARGUMENTS)}
    assert listed == fields
    assert not set(INTERNAL) & listed


@pytest.mark.parametrize(
    ("old", "new"),
    [(["--scale"], ["scale"]), (["--bulk"], ["bulk"]), ([], ["speed"])],
)
def test_the_old_spellings_name_the_same_tables(old, new, capsys, monkeypatch):
    assert _help(["benchmark", *old, "--help"] if old else ["benchmark", "--quick", "--help"],
                 capsys, monkeypatch) == _help(["benchmark", *new, "--help"], capsys, monkeypatch)  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "table", "expected"),
    [
        (["--dataset", "sms_spam", "--quick"], "speed", {"quick": True, "epochs": 2}),
        (["speed", "--rows", "baseline"], "speed", {"rows": "baseline"}),
        (["--scale", "--sizes", "10,20"], "scale", {"sizes": "10,20"}),
        (["--sizes", "10", "--scale"], "scale", {"sizes": "10"}),
        (["scale", "--quick"], "scale", {"sizes": "50,200", "epochs": 1}),
        (["--bulk", "--test_examples", "6"], "bulk", {"test_examples": 6}),
        (["bulk"], "bulk", {"test_examples": None}),
    ],
)
def test_each_spelling_runs_its_table_with_its_flags(argv, table, expected, monkeypatch):
    ran = []
    for name, module in TABLES.items():
        monkeypatch.setattr(module, "main", lambda args, name=name: ran.append((name, args)))
    assert main(["benchmark", *argv]) == 0
    [(name, args)] = ran
    assert name == table and isinstance(args, TABLES[table].ARGUMENTS)
    assert {key: getattr(args, key) for key in expected} == expected


def test_the_script_takes_the_subcommands(capsys, monkeypatch):
    script = load_script("benchmark")
    assert _help(["benchmark", "scale", "--help"], capsys, monkeypatch) == (
        _help_of_script(script, ["scale", "--help"], capsys)
    )


def _help_of_script(script, argv, capsys) -> str:
    assert script.main(argv) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["speed", "--zzz"], "unknown flag --zzz; see `hf-spam benchmark speed --help`"),
        (["bulk", "--epochs", "2"], "unknown flag --epochs; see `hf-spam benchmark bulk --help`"),
        (["scale", "--sizez", "10"], "unknown flag --sizez; did you mean --sizes?"),
        (["--zzz"], "unknown flag --zzz; see `hf-spam benchmark speed --help`"),
        (["--bulk", "--zzz"], "unknown flag --zzz; see `hf-spam benchmark bulk --help`"),
        (["scale", "--run_data", "x"], "unknown flag --run_data; see `hf-spam benchmark scale --help`"),
        (["speed", "--epochs", "two"], "argument --epochs: invalid int value: 'two'"),
        (["spede"], "unknown table 'spede'; did you mean speed? choose from speed, bulk, scale, serve"),
        (["--bulk", "--scale"], "--bulk and --scale: one table at a time (hf-spam benchmark bulk|scale)"),
        (["scale", "--sizes", "0"], "--sizes 0: expected positive numbers of texts, e.g. 1000,5000"),
        (["serve", "--seconds", "-1"], "--seconds must be positive, got -1.0"),
        (["serve", "--requests", "-5"], "--requests must be 0 or more, got -5"),
    ],
)  # fmt: skip
def test_bad_flags_give_one_error_line_and_exit_2(argv, message, capsys, monkeypatch):
    for module in TABLES.values():
        monkeypatch.setattr(module, "main", lambda args: pytest.fail("the table ran"))
    assert main(["benchmark", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"error: {message}\n" and captured.out == ""
