"""hf_spam.hub.space: the Space folder (card metadata read back with huggingface_hub, requirements
against pyproject.toml), the push through a fake Hub API, errors, and the dry-run folder started
with `python app.py` in a fresh interpreter, answering on the port it prints."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import FakeHfApi, random_model
from huggingface_hub import SpaceCard
from packaging.requirements import Requirement

import hf_spam.hub.upload as upload
from hf_spam.errors import HubError
from hf_spam.hub.space import build_space_folder, format_space_result, push_space

ROOT = Path(__file__).resolve().parents[2]
MODEL_REPO = "alice/gpt2-sms-spam"
SPACE = "alice/spam-demo"


@pytest.fixture
def fake_hub(monkeypatch):
    FakeHfApi.calls = []
    FakeHfApi.fail_upload = False
    monkeypatch.setattr(upload, "HfApi", FakeHfApi)  # the one place that talks to the Hub
    return FakeHfApi


def test_space_folder(tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "examples.json").write_text(json.dumps(["free cash now"]))
    target = tmp_path / "space"
    files = build_space_folder(MODEL_REPO, target, model_dir=model_dir)
    names = {str(path) for path in files}
    assert {"app.py", "requirements.txt", "README.md", "examples.json"} <= names
    assert {"hf_spam/__init__.py", "hf_spam/demo/app.py", "hf_spam/inference/load.py"} <= names
    assert not any("__pycache__" in name for name in names)

    card = SpaceCard.load(target / "README.md")
    assert card.data.sdk == "gradio"
    assert card.data.app_file == "app.py"
    assert card.data.models == [MODEL_REPO]
    assert f"https://huggingface.co/{MODEL_REPO}" in card.text

    app = (target / "app.py").read_text()
    compile(app, "app.py", "exec")
    assert f'"HF_SPAM_MODEL", "{MODEL_REPO}"' in app


def test_versions_and_requirements_follow_pyproject(tmp_path):
    tomllib = pytest.importorskip("tomllib", reason="Python < 3.11 has no tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    build_space_folder(MODEL_REPO, tmp_path)
    (gradio_pin,) = project["optional-dependencies"]["demo"]
    sdk_version = SpaceCard.load(tmp_path / "README.md").data.sdk_version
    assert Requirement(gradio_pin).specifier.contains(sdk_version)
    lines = (tmp_path / "requirements.txt").read_text().splitlines()
    assert lines[0] == "--extra-index-url https://download.pytorch.org/whl/cpu"
    declared = {Requirement(r).name: Requirement(r).specifier for r in project["dependencies"]}
    written = {Requirement(r).name: Requirement(r).specifier for r in lines[1:]}
    assert written == declared


def test_dry_run_builds_what_a_push_uploads(tmp_path, fake_hub):
    dry = push_space(SPACE, MODEL_REPO, dry_run=True, output_dir=tmp_path / "dry")
    assert fake_hub.calls == []  # no token, no Hub
    assert dry.dry_run and (tmp_path / "dry" / "app.py").is_file()
    printed = format_space_result(dry)
    assert f"would upload {len(dry.files)} files" in printed
    assert f"https://huggingface.co/spaces/{SPACE}" in printed and "hf_spam/" in printed

    pushed = push_space(SPACE, MODEL_REPO, token="hf_x", private=True)
    (_, created), (_, uploaded) = fake_hub.calls[1:]
    assert created == {
        "repo_id": SPACE,
        "repo_type": "space",
        "space_sdk": "gradio",
        "private": True,
        "exist_ok": True,
    }
    assert uploaded["repo_type"] == "space" and uploaded["repo_id"] == SPACE
    assert uploaded["files"] == sorted(path.as_posix() for path in dry.files)
    assert pushed.files.keys() == dry.files.keys()
    assert pushed.url.endswith("/commit/abc123")
    assert not pushed.folder.exists()  # a temporary folder is removed after the push


def test_errors_name_the_problem(tmp_path, fake_hub, monkeypatch):
    with pytest.raises(HubError, match="--space 'no-namespace': expected USER/NAME"):
        push_space("no-namespace", MODEL_REPO, dry_run=True)
    with pytest.raises(HubError, match="--space 'a/b c' is not a valid Space id"):
        push_space("a/b c", MODEL_REPO, dry_run=True)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("hf_spam.hub.sharing.get_token", lambda: None)
    with pytest.raises(HubError, match="No Hugging Face token"):
        push_space(SPACE, MODEL_REPO)
    fake_hub.fail_upload = True
    with pytest.raises(HubError, match=f"Pushing the Space to {SPACE} failed: Connection refused"):
        push_space(SPACE, MODEL_REPO, token="hf_x", output_dir=tmp_path / "kept")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        push_space(SPACE, MODEL_REPO, dry_run=True, output_dir=tmp_path / "full")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_dry_run_folder_starts_with_python_app_py(tmp_path, tiktoken_available):
    """The folder as uploaded, run in a fresh interpreter that cannot see the checkout, against
    a local model folder (the Hub is offline here): it prints its URL and answers there."""
    model_dir = random_model(tmp_path / "model")
    folder = push_space(SPACE, MODEL_REPO, dry_run=True, output_dir=tmp_path / "space").folder
    env = {
        **os.environ,
        "HF_SPAM_MODEL": str(model_dir),
        "GRADIO_SERVER_PORT": str(_free_port()),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",  # the URL line must arrive before the server blocks
    }
    env.pop("PYTHONPATH", None)
    process = subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url, output = None, []
        deadline = time.monotonic() + 90
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                break
            output.append(line)
            match = re.search(r"Running on local URL:\s+(http://\S+)", line)
            url = match.group(1).rstrip("/") if match else None
        assert url, "app.py printed no URL:\n" + "".join(output)[-3000:]
        assert url.endswith(f":{env['GRADIO_SERVER_PORT']}")
        with urllib.request.urlopen(f"{url}/config", timeout=30) as response:
            config = json.load(response)
        # The page of the demo (app.py's folder, with its hf_spam copy, is first on sys.path).
        assert any(
            "spam or ham?" in str(c.get("props", {}).get("value")) for c in config["components"]
        )
    finally:
        process.terminate()
        process.wait(timeout=30)
