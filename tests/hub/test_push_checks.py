"""What `hf-spam push` refuses to upload: a link out of the folder, an `auto_map` into another
repo, code that is not hf_spam's own (unless `--replace_code`), weights that are not the config's
model's; each one line naming the file or key, before anything is built."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import trained_model

from hf_spam.cli import main
from hf_spam.hub.checks import PACKAGE_CODE

REPO = "alice/tiny-gpt-spam"


@pytest.fixture
def folder(spam_csv, tmp_path_factory, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained_model(tmp_path_factory, spam_csv), copy)
    return copy


def _dry_run(folder: Path, out: Path, *extra: str) -> int:
    argv = ["push", "--model", folder, "--repo_id", REPO, "--dry_run", "--output_dir", out]
    return main([*map(str, argv), *extra])


def _refused(folder: Path, tmp_path: Path, capsys) -> str:
    out = tmp_path / "upload"
    assert _dry_run(folder, out) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert not out.exists()
    return lines[0]


def test_an_auto_map_into_another_repo_is_refused_naming_the_key(folder, tmp_path, capsys):
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"]["AutoModelForSequenceClassification"] = (
        "other/code--modeling.GPTForSequenceClassification"
    )
    (folder / "config.json").write_text(json.dumps(config))
    line = _refused(folder, tmp_path, capsys)
    assert f"{folder / 'config.json'}: auto_map AutoModelForSequenceClassification is " in line
    assert "not one of hf_spam's classes" in line


def test_an_auto_map_naming_a_class_hf_spam_lacks_is_refused(folder, tmp_path, capsys):
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"]["AutoConfig"] = "configuration.Backdoor"
    (folder / "config.json").write_text(json.dumps(config))
    assert "auto_map AutoConfig is 'configuration.Backdoor'" in _refused(folder, tmp_path, capsys)


def test_code_that_differs_from_the_package_is_refused_or_replaced(folder, tmp_path, capsys):
    with open(folder / "modeling.py", "a", encoding="utf-8") as handle:
        handle.write("\nimport os  # runs on every machine that loads the repo\n")
    line = _refused(folder, tmp_path, capsys)
    assert f"{folder / 'modeling.py'} differs from hf_spam's own modeling.py" in line
    assert "--replace_code" in line
    out = tmp_path / "replaced"
    assert _dry_run(folder, out, "--replace_code", "true") == 0
    for name, own in PACKAGE_CODE.items():
        assert (out / name).read_bytes() == own.read_bytes(), name


def test_weights_linked_from_outside_the_folder_are_not_uploaded(folder, tmp_path, capsys):
    outside = tmp_path / "elsewhere.safetensors"
    shutil.move(folder / "model.safetensors", outside)
    (folder / "model.safetensors").symlink_to(outside)
    line = _refused(folder, tmp_path, capsys)
    assert f"{folder / 'model.safetensors'} is a link to {outside}, outside the folder" in line


def test_weights_that_are_not_the_configs_model_are_refused(folder, tmp_path, capsys):
    """The check every command makes of a model folder runs for push too."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(folder / "model.safetensors")
    tensors.pop("out_head.bias")
    save_file(tensors, folder / "model.safetensors")
    assert "model.safetensors: lacks tensor out_head.bias" in _refused(folder, tmp_path, capsys)
