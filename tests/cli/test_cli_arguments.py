"""The commands' argument parsing (hf_spam/cli/arguments.py): `--help` by section, one
HfArgumentParser group per dataclass, and `hf-spam train ARGS.json` (or `.yaml`), read by
HfArgumentParser's `parse_json_file` / `parse_yaml_file` into the same dataclasses as the
equivalent command line, every mistake one line naming the file."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, fields
from pathlib import Path

import pytest
import torch
import yaml
from helpers import ROOT, TINY, write_spam_fixture
from transformers import HfArgumentParser

from hf_spam.cli import main
from hf_spam.cli.arguments import argument_groups, group_description, parser_for
from hf_spam.data import DataArguments
from hf_spam.training.run import ModelArguments, SpamTrainingArguments

TRAIN = (ModelArguments, DataArguments, SpamTrainingArguments)
_SECTION = re.compile(r"^(?!usage:)(\S[^:]*):$")
_FLAG = re.compile(r"^  (--[\w-]+)")


def sections(help_text: str) -> dict[str, list[str]]:
    """--help's sections, in order: title -> the lines under it."""
    found: dict[str, list[str]] = {}
    current = None
    for line in help_text.splitlines():
        title = _SECTION.match(line)
        if title:
            current = found.setdefault(title.group(1), [])
        elif current is not None:
            current.append(line)
    return found


def flags(lines: list[str]) -> list[str]:
    """The flags a section lists (each by its first spelling)."""
    return [m.group(1) for m in map(_FLAG.match, lines) if m]


def own_flags(dtype: type) -> set[str]:
    return {f"--{f.name}" for f in fields(dtype) if f.init}


def help_of(command: str, capsys, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "100")  # argparse wraps to the terminal's width
    capsys.readouterr()
    assert main([*command.split(), "--help"]) == 0
    return capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# --help by section
# --------------------------------------------------------------------------------------------


def test_train_help_reads_by_section_our_flags_first(capsys, monkeypatch):
    text = help_of("train", capsys, monkeypatch)
    found = sections(text)
    assert list(found) == [
        "options",
        "model",
        "LoRA",
        "the book's classifier knobs",
        "speed",
        "reporting",
        "data",
        "training",
    ]
    assert flags(found["options"]) == []  # only -h: every flag is in its section
    parts = [*argument_groups(ModelArguments), DataArguments, SpamTrainingArguments]
    assert [part._argument_group_name for part in parts] == list(found)[1:]
    for part in parts:
        lines = found[part._argument_group_name]
        # The one-line description (the dataclass docstring's first line), then the flags.
        description = " ".join(lines[: lines.index("")]).split()
        assert description == group_description(part).split()
        listed = set(flags(lines))
        assert own_flags(part) <= listed
        switches = {f"--no_{f.name}" for f in fields(part) if f.default is True}  # --no_x
        assert listed - switches == own_flags(part)
    assert {"--learning_rate", "--bf16", "--push_to_hub"} <= set(flags(found["training"]))
    assert {"--lora_rank", "--lora_target_modules"} <= set(flags(found["LoRA"]))
    # The usage no longer lists every flag (it was 144 of 790 lines); the sections do.
    usage = text[: text.index("\n\n")].splitlines()
    assert usage == [
        "usage: hf-spam train [flags]",
        "   or: hf-spam train ARGS.json   (or ARGS.yaml: every flag, as name: value)",
    ]
    ours = [line for title in list(found)[1:-1] for line in found[title]]
    assert max(len(found[title]) for title in list(found)[1:-1]) < 80
    assert len(ours) < len(found["training"]) / 2  # TrainingArguments' long list comes last


def test_help_names_a_value_once_and_no_switch_twice(capsys, monkeypatch):
    found = sections(help_of("train", capsys, monkeypatch))
    assert "  --lora_rank, --lora-rank LORA_RANK" in found["LoRA"]
    assert "  --eval_on_train, --eval-on-train [true|false]" in found["reporting"]
    no_switch = found["reporting"].index("  --no_eval_on_train, --no-eval-on-train")
    assert found["reporting"][no_switch + 1].split() == "Same as --eval_on_train false.".split()
    assert not [line for line in found["speed"] if "(default: None)" in line]


@pytest.mark.parametrize(
    ("command", "titles"),
    [
        ("evaluate", ["options", "evaluation", "inference", "data"]),
        ("predict", ["positional arguments", "options", "prediction", "inference"]),
        ("experiments", ["options", "experiments"]),
        ("prepare-data", ["options", "data", "preparation"]),
        ("demo", ["options", "demo", "inference"]),
        ("serve", ["options", "server", "batching and limits"]),
        ("convert", ["options", "conversion"]),
        ("push", ["options", "upload"]),
        ("benchmark speed", ["options", "speed benchmark"]),
        ("benchmark bulk", ["options", "bulk benchmark"]),
        ("benchmark scale", ["options", "scale benchmark"]),
        ("benchmark serve", ["options", "serve benchmark"]),
    ],
)
def test_every_command_reads_by_section(command, titles, capsys, monkeypatch):
    found = sections(help_of(command, capsys, monkeypatch))
    assert list(found) == titles
    assert flags(found["options"]) == []
    for title in titles[titles.index("options") + 1 :]:
        assert flags(found[title]), title
        assert found[title][0].strip(), f"{title}: no description"


def test_usage_names_required_flags_and_positionals(capsys, monkeypatch):
    assert help_of("predict", capsys, monkeypatch).startswith(
        "usage: hf-spam predict --model MODEL [flags] [TEXT ...]\n"
    )


@dataclass
class Colour:
    """How it looks."""

    _argument_group_name = "colour"

    hue: str = "red"


@dataclass
class Size:
    """How big it is."""

    _argument_group_name = "size"

    width: int = 1


@dataclass
class Thing(Size, Colour):
    """A thing: its parts are its sections."""


@dataclass
class Broken(Size, Colour):
    weight: int = 0  # in no section: would get no flag


def test_a_dataclass_of_parts_gets_one_section_per_part(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    parser = parser_for("thing", [Thing], "")
    assert parser.parse(["--hue", "blue", "--width", "3"]) == (Thing(width=3, hue="blue"),)
    found = sections(parser.format_help())
    assert list(found) == ["options", "colour", "size"]
    assert (found["colour"][0].strip(), flags(found["colour"])) == ("How it looks.", ["--hue"])
    with pytest.raises(TypeError, match=r"Broken: fields \['weight'\] belong to none"):
        parser_for("broken", [Broken], "")


# --------------------------------------------------------------------------------------------
# hf-spam train ARGS.json
# --------------------------------------------------------------------------------------------

COMMAND_LINE = [
    "--dataset", "spam.csv", "--init", "random", "--config_overrides", TINY,
    "--trainable_token_pos", "last", "--context_length", "40", "--labels", "ham,spam",
    "--lora_rank", "4", "--lora_alpha", "8", "--eval_on_train", "false",
    "--output_dir", "runs/x", "--num_train_epochs", "2", "--learning_rate", "0.002",
    "--train_sampling_strategy", "book", "--report_to", "none", "--bf16", "false",
]  # fmt: skip
# The same run as a file, with the types JSON has: numbers, booleans (`context_length` is a
# number too, though the flag reads its text, and the float `num_train_epochs` an integer).
AS_FILE = {
    "dataset": "spam.csv", "init": "random", "config_overrides": TINY,
    "trainable_token_pos": "last", "context_length": 40, "labels": "ham,spam",
    "lora_rank": 4, "lora_alpha": 8, "eval_on_train": False,
    "output_dir": "runs/x", "num_train_epochs": 2, "learning_rate": 0.002,
    "train_sampling_strategy": "book", "report_to": "none", "bf16": False,
}  # fmt: skip


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".yml"])
def test_a_file_gives_the_arguments_of_its_command_line(tmp_path, suffix):
    path = tmp_path / f"args{suffix}"
    dump = json.dumps if suffix == ".json" else yaml.safe_dump
    path.write_text(dump(AS_FILE), encoding="utf-8")
    parser = parser_for("train", TRAIN, "", argument_file=True)

    from_file = parser.parse([str(path)])
    from_flags = parser.parse(COMMAND_LINE)
    assert from_file == from_flags
    model_args, data_args, training_args = from_file
    assert (data_args.context_length, data_args.pad_to) == ("40", 40)
    assert (model_args.lora_rank, model_args.eval_on_train) == (4, False)
    assert (training_args.num_train_epochs, training_args.learning_rate) == (2.0, 0.002)


def test_a_file_is_read_by_hf_argument_parser(tmp_path):
    """Where the JSON already has the flags' types, the result is transformers' own reading."""
    path = tmp_path / "args.json"
    path.write_text(json.dumps({**AS_FILE, "context_length": "40"}), encoding="utf-8")
    ours = parser_for("train", TRAIN, "", argument_file=True).parse([str(path)])
    assert ours == HfArgumentParser(TRAIN).parse_json_file(path)


def test_lists_and_objects_in_a_file_pass_as_they_are(tmp_path):
    path = tmp_path / "args.json"
    kwargs = {"min_lr": 1e-6}
    path.write_text(json.dumps({"report_to": [], "lr_scheduler_kwargs": kwargs}))
    (*_, training_args) = parser_for("train", TRAIN, "", argument_file=True).parse([str(path)])
    assert (training_args.report_to, training_args.lr_scheduler_kwargs) == ([], kwargs)


def _bad_files(tmp: Path) -> list[tuple[Path, str]]:
    def file(name: str, text: str) -> Path:
        (tmp / name).write_text(text, encoding="utf-8")
        return tmp / name

    out = str(tmp / "out")
    return [
        (file("typo.json", json.dumps({"learing_rate": 1e-4, "output_dir": out})),
         "unknown key 'learing_rate'; did you mean 'learning_rate'?"),
        (file("typo.yaml", f"output_dir: {out}\nlora_rnk: 4\n"),
         "unknown key 'lora_rnk'; did you mean 'lora_rank'?"),
        (tmp / "missing.json", "no such file"),
        (file("broken.json", '{"init": "random",}'),
         "invalid JSON, line 1, column 19: Expecting property name enclosed in double quotes"),
        (file("broken.yaml", "init: [random\n"),
         "invalid YAML, line 2, column 1: expected ',' or ']', but got '<stream end>'"),
        (file("list.json", "[1, 2]"), "expected flag names and values, got a list"),
        (file("value.json", json.dumps({"lora_rank": "four", "output_dir": out})),
         "lora_rank: invalid int value: 'four'"),
        (file("choice.json", json.dumps({"trainable_layers": "most", "output_dir": out})),
         "trainable_layers: invalid choice: 'most' (choose from 'head', 'last_layer',"),
        (file("negative.json", json.dumps({"learning_rate": -1, "output_dir": out})),
         "--learning_rate must be > 0, got -1.0"),
    ]  # fmt: skip


def test_bad_argument_files_give_one_line(tmp_path, capsys):
    for path, message in _bad_files(tmp_path):
        capsys.readouterr()
        assert main(["train", str(path)]) == 2, path
        err = capsys.readouterr().err
        assert err.startswith(f"error: {path}: {message}"), err
        assert err.count("\n") == 1 and err.endswith("\n"), err
    assert not (tmp_path / "out").exists()


def test_a_file_comes_alone(tmp_path, capsys):
    path = tmp_path / "args.json"
    path.write_text("{}")
    assert main(["train", str(path), "--seed", "1"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {path}: an arguments file comes alone (`hf-spam train {path}`)\n"


# --------------------------------------------------------------------------------------------
# Real processes: scripts/train.py and accelerate launch
# --------------------------------------------------------------------------------------------


def _run(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_SPAM_DEBUG", None)
    return subprocess.run(
        list(argv), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def test_script_reads_the_file_and_reports_a_bad_key(tmp_path):
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"lora_rnak": 4}))
    result = _run(sys.executable, "scripts/train.py", str(path))
    assert result.returncode == 2
    assert result.stderr == f"error: {path}: unknown key 'lora_rnak'; did you mean 'lora_rank'?\n"


@pytest.mark.slow  # a fresh `accelerate launch` of a tiny run
def test_accelerate_launch_trains_from_a_file(tmp_path, tiktoken_available):
    data = write_spam_fixture(tmp_path / "spam.csv", rows=40)
    out = tmp_path / "run"
    run = {
        "dataset": str(data), "init": "random", "config_overrides": TINY,
        "output_dir": str(out), "num_train_epochs": 1, "learning_rate": 0.002,
        "save_strategy": "no", "eval_on_train": False, "report_to": "none",
        "disable_tqdm": True, "data_cache_dir": str(tmp_path / "cache"),
        "trunk_cache_dir": str(tmp_path / "trunk"),
    }  # fmt: skip
    path = tmp_path / "args.json"
    path.write_text(json.dumps(run))
    launcher = Path(sys.executable).with_name("accelerate")
    result = _run(str(launcher), "launch", "--num_processes", "1", "--cpu", "--num_machines",
                  "1", "--mixed_precision", "no", "--dynamo_backend", "no", "scripts/train.py",
                  str(path))  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads((out / "config.json").read_text())
    assert (config["emb_dim"], config["n_layers"]) == (32, 2)  # the file's --config_overrides
    saved = torch.load(out / "training_args.bin", weights_only=False)  # what Trainer ran with
    assert (saved.output_dir, saved.num_train_epochs, saved.learning_rate) == (str(out), 1, 0.002)
    assert (saved.save_strategy, saved.report_to) == ("no", [])
