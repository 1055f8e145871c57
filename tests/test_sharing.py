"""scripts/push_to_hub.py and hf_spam.sharing, offline: the dry-run folder loads in a fresh
process and its card's metadata parses; the push goes through a stand-in HfApi; no token, a bad
folder or repo id fail before any work."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import load_script
from helpers import FakeHfApi, run_fresh_python, trained_model
from transformers import pipeline

import hf_spam.sharing as sharing

push = load_script("push_to_hub")
REPO = "alice/tiny-gpt-spam"
EXPECTED_FILES = {
    "README.md", "config.json", "model.safetensors", "modeling.py", "configuration.py",
    "tokenizer.json", "tokenizer_config.json", "loss-plot.png", "accuracy-plot.png",
    "confusion-matrix.png",
}  # fmt: skip


@pytest.fixture(scope="module")
def model_dir(spam_csv, tmp_path_factory) -> Path:
    """A copy of the trained folder, with the leftovers of a run that must not be uploaded."""
    folder = tmp_path_factory.mktemp("share") / "run"
    shutil.copytree(trained_model(tmp_path_factory, spam_csv), folder)
    (folder / "checkpoint-12").mkdir()
    (folder / "checkpoint-12" / "optimizer.pt").write_bytes(b"state")
    return folder


@pytest.fixture(scope="module")
def dry_run(model_dir, tmp_path_factory) -> tuple[Path, str]:
    """The upload folder `--dry_run` built, and what the script printed."""
    out = tmp_path_factory.mktemp("dry") / "upload"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        argv = ["--model", str(model_dir), "--repo_id", REPO, "--dry_run", "--output_dir", str(out)]
        assert push.main(argv) == 0
    return out, printed.getvalue()


def _front_matter(text: str) -> dict:
    match = re.match(r"---\n(.*?)\n---\n", text, flags=re.DOTALL)
    assert match, text[:200]
    return yaml.safe_load(match.group(1))


def _snippet(card: str) -> str:
    return re.search(r"## Usage\n\n```python\n(.*?)```", card, flags=re.DOTALL).group(1)


@pytest.fixture
def fake_hub(monkeypatch):
    FakeHfApi.calls = []
    FakeHfApi.fail_upload = False
    monkeypatch.setattr(sharing, "HfApi", FakeHfApi)
    return FakeHfApi


def test_dry_run_builds_and_lists_the_upload_folder(dry_run, model_dir):
    dry_run, listing = dry_run
    assert {p.name for p in dry_run.iterdir()} == EXPECTED_FILES
    assert f"Dry run: would upload {len(EXPECTED_FILES)} files" in listing
    assert f"https://huggingface.co/{REPO}" in listing and "model.safetensors" in listing
    assert "checkpoint" not in listing
    config = json.loads((dry_run / "config.json").read_text())
    assert config["auto_map"]["AutoModelForSequenceClassification"].startswith("modeling.")
    assert (dry_run / "model.safetensors").read_bytes() == (
        model_dir / "model.safetensors"
    ).read_bytes()


def test_card_metadata_parses_and_holds_the_metrics(dry_run, model_dir):
    card = (dry_run[0] / "README.md").read_text()
    metadata = _front_matter(card)
    assert metadata["pipeline_tag"] == "text-classification"
    assert metadata["library_name"] == "transformers"
    assert metadata["license"] == "mit"
    assert set(metadata["metrics"]) >= {"accuracy", "f1"}
    [entry] = metadata["model-index"]
    assert entry["name"] == REPO.split("/")[1]
    results = json.loads((model_dir / "all_results.json").read_text())
    by_split = {r["dataset"]["split"]: r for r in entry["results"]}
    test = {m["type"]: m["value"] for m in by_split["test"]["metrics"]}
    assert test["accuracy"] == round(results["test_accuracy"], 4)
    assert test["f1"] == round(results["test_f1_macro"], 4)
    snippet = _snippet(card)
    assert f'model="{REPO}"' in snippet and "trust_remote_code=True" in snippet
    for expected in ("## Limitations", "978-1633437166", "DocEng 2011", "![loss-plot.png]"):
        assert expected in card
    # The random-init run names no base model; nor does its card claim one.
    assert "base_model" not in metadata and "https://huggingface.co/n/a" not in card


def test_dry_run_folder_works_in_a_fresh_process(dry_run, tmp_path):
    """The card's usage snippet, pasted as is (with the folder for the repo id), runs in a
    process that never imports hf_spam."""
    dry_run, _ = dry_run
    snippet = _snippet((dry_run / "README.md").read_text()).replace(REPO, str(dry_run))
    script = snippet + textwrap.dedent(
        """
        import json, sys
        assert not any(m == "hf_spam" or m.startswith("hf_spam.") for m in sys.modules)
        print(json.dumps(clf(["WIN a free prize call now", "see you at home later mum"])))
        """
    )
    fresh = run_fresh_python(script, tmp_path)
    here = pipeline("text-classification", model=str(dry_run))(
        ["WIN a free prize call now", "see you at home later mum"]
    )
    assert [r["label"] for r in fresh] == [r["label"] for r in here] == ["spam", "ham"]
    assert [r["score"] for r in fresh] == pytest.approx([r["score"] for r in here], abs=1e-5)


def test_push_creates_the_repo_and_uploads_the_folder(model_dir, fake_hub, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    argv = ["--model", str(model_dir), "--repo_id", REPO, "--private"]
    assert push.main(argv) == 0
    calls = dict(fake_hub.calls)
    assert calls["init"] == {"token": "hf_from_env"}
    assert calls["create_repo"] == {
        "repo_id": REPO, "private": True, "exist_ok": True, "repo_type": "model"
    }  # fmt: skip
    upload = calls["upload_folder"]
    assert set(upload["files"]) == EXPECTED_FILES and upload["repo_type"] == "model"
    assert f"https://huggingface.co/{REPO}/commit/abc123" in capsys.readouterr().out

    result = sharing.push_model_folder(model_dir, REPO, token="hf_flag")
    assert dict(fake_hub.calls[-3:])["init"] == {"token": "hf_flag"}
    assert not result.upload_dir.exists()  # the temporary folder is gone

    fake_hub.fail_upload = True
    assert push.main(argv) == 1
    message = capsys.readouterr().err
    assert f"Pushing {model_dir} to {REPO} failed: Connection refused" in message


def test_no_token_fails_before_any_work(model_dir, fake_hub, monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(sharing, "get_token", lambda: None)

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the token was checked")

    monkeypatch.setattr(sharing, "upload_file_names", no_work)
    monkeypatch.setattr(sharing, "build_upload_folder", no_work)
    out = tmp_path / "upload"
    argv = ["--model", str(model_dir), "--repo_id", REPO, "--output_dir", str(out)]
    assert push.main(argv) == 1
    assert "No Hugging Face token: run `hf auth login`, set HF_TOKEN" in capsys.readouterr().err
    assert fake_hub.calls == [] and not out.exists()


def test_bad_folder_or_repo_id_says_what_is_wrong(model_dir, tmp_path, capsys):
    def error(folder: Path, repo_id: str = REPO) -> str:
        assert push.main(["--model", str(folder), "--repo_id", repo_id, "--dry_run"]) == 1
        return capsys.readouterr().err

    incomplete = tmp_path / "incomplete"
    shutil.copytree(model_dir, incomplete, ignore=shutil.ignore_patterns("checkpoint-*"))
    (incomplete / "model.safetensors").unlink()
    assert "missing model.safetensors" in error(incomplete)
    (incomplete / "model.safetensors").write_bytes(b"")
    (incomplete / "config.json").unlink()
    assert "missing config.json" in error(incomplete)
    config = json.loads((model_dir / "config.json").read_text())
    (incomplete / "config.json").write_text(json.dumps({**config, "auto_map": None}))
    assert "has no auto_map" in error(incomplete)
    (incomplete / "config.json").write_text(json.dumps(config))
    (incomplete / "modeling.py").unlink()
    assert "auto_map names modeling.py, which is missing" in error(incomplete)
    assert "is not a valid Hub repo id" in error(model_dir, "alice/bad name")
    assert "expected USER/NAME" in error(model_dir, "no-namespace")


def test_saved_card_context_is_used(model_dir, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(model_dir, folder, ignore=shutil.ignore_patterns("checkpoint-*"))
    context = sharing.load_card_context(folder)
    assert context["labels"] == {"0": "ham", "1": "spam"}
    assert context["results"]["test"]["test_accuracy"] >= 0.5
    assert context["split_sizes"] == {"train": 112, "validation": 16, "test": 32}
    saved = {
        "base_model": "openai-community/gpt2",
        "dataset_id": "ucirvine/sms_spam",
        "hyperparameters": {"learning_rate": 5e-5, "batch_size": 8},
        "results": {"test": {"accuracy": 0.9567, "f1_macro": 0.9566}},
    }
    (folder / sharing.CARD_CONTEXT_FILE).write_text(json.dumps(saved))
    files = sharing.build_upload_folder(folder, tmp_path / "upload", REPO)
    assert Path("README.md") in files and Path(sharing.CARD_CONTEXT_FILE) not in files
    card = (tmp_path / "upload" / "README.md").read_text()
    metadata = _front_matter(card)
    assert metadata["base_model"] == "openai-community/gpt2"
    assert metadata["datasets"] == ["ucirvine/sms_spam"]
    assert "| learning_rate  |" in card and "Grumbletext" in card  # SMS limitations
