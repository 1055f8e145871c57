"""scripts/push_to_hub.py and hf_spam.hub.sharing, offline: the dry-run folder loads in a fresh
process and its card's metadata parses; the push goes through a stand-in HfApi that applies
huggingface_hub's allow/delete pattern rules (checked against huggingface_hub's own
upload_folder); a re-push deletes stale files only; an evaluation report's scores reach the
model-index; no token, a bad folder, report or repo id fail before any work."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from helpers import FakeHfApi, load_script, run_fresh_python, trained_model, write_spam_fixture
from huggingface_hub import HfApi, ModelCard
from transformers import pipeline

import hf_spam.hub.sharing as sharing
import hf_spam.hub.upload as upload
from hf_spam.cli import main as cli_main
from hf_spam.errors import HubError, ModelLoadError

push = load_script("push_to_hub")
REPO = "alice/tiny-gpt-spam"
EXPECTED_FILES = {
    "README.md", "config.json", "model.safetensors", "modeling.py", "configuration.py",
    "tokenizer.json", "tokenizer_config.json", "loss-plot.png", "accuracy-plot.png",
    "confusion-matrix.png", "examples.json",
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
    FakeHfApi.repos = {}
    monkeypatch.setattr(upload, "HfApi", FakeHfApi)
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
    # A kept folder holds copies: saving into the model folder again cannot change it.
    assert not (dry_run / "model.safetensors").samefile(model_dir / "model.safetensors")


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
    assert not result.folder.exists()  # the temporary folder is gone

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
    message = capsys.readouterr().err
    assert f"No Hugging Face token to push to {REPO}: run `hf auth login`, set HF_TOKEN" in message
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
    assert "model.safetensors: not a readable safetensors file" in error(incomplete)
    shutil.copy(model_dir / "model.safetensors", incomplete / "model.safetensors")
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
    assert context["labels"] == ["ham", "spam"]
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


# --------------------------------------------------------------------------------------------
# Re-push, evaluation report, errors, imports
# --------------------------------------------------------------------------------------------


def _hub_card(repo_files: dict[str, bytes]) -> ModelCard:
    return ModelCard(repo_files["README.md"].decode("utf-8"))


def _index_scores(card: ModelCard, split: str) -> dict[str, float]:
    return {
        r.metric_type: r.metric_value for r in card.data.eval_results if r.dataset_split == split
    }


def test_repush_deletes_what_left_the_model_and_nothing_else(model_dir, fake_hub, tmp_path):
    folder = shutil.copytree(model_dir, tmp_path / "run")
    sharing.push_model_folder(folder, REPO, token="hf_x")
    hub = fake_hub.repos[REPO]
    assert set(hub) == EXPECTED_FILES | {".gitattributes"}
    # What a person put in the repo by hand, and what an earlier push of another layout left.
    by_hand = {
        "notes.md": b"mine",
        "images/loss-plot.png": b"png",
        "eval/confusion-matrix.png": b"",
    }
    stale = {
        "model-00001-of-00002.safetensors": b"old", "model.safetensors.index.json": b"{}",
        "vocab.json": b"{}",
    }  # fmt: skip
    hub.update(by_hand | stale)
    (folder / "accuracy-plot.png").unlink()  # a plot no longer part of the model

    result = sharing.push_model_folder(folder, REPO, token="hf_x")
    upload = fake_hub.calls[-1][1]
    assert sorted(upload["deleted"]) == sorted([*stale, "accuracy-plot.png"])
    assert set(hub) == (EXPECTED_FILES - {"accuracy-plot.png"}) | {".gitattributes", *by_hand}
    assert hub["notes.md"] == b"mine" and hub[".gitattributes"].startswith(b"*.safetensors")
    assert hub["model.safetensors"] == (folder / "model.safetensors").read_bytes()
    assert not [name for name in hub if "checkpoint" in name or "optimizer" in name]
    readme = hub["README.md"].decode()
    assert f'model="{REPO}"' in _snippet(readme) and str(folder) not in readme
    assert "accuracy-plot.png" not in readme  # the card shows only the plots uploaded
    last_line = sharing.format_push_result(result).splitlines()[-1]
    assert "model-*-of-*.safetensors" in last_line and last_line.endswith("repo is touched.")
    assert not list(tmp_path.glob(".*upload*"))  # the temporary upload folder is gone


def test_fake_hub_applies_patterns_as_huggingface_hub_does(dry_run, tmp_path, monkeypatch):
    """The stand-in's add/delete sets equal those of huggingface_hub's own `upload_folder`, whose
    network calls (listing the repo, the commit, the README check) are replaced."""
    import huggingface_hub.hf_api
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    class RecordingHfApi(HfApi):
        def list_repo_files(self, repo_id, **kwargs):
            return list(repo_files)

        def create_commit(self, repo_id, operations, **kwargs):
            self.operations = operations

        def _validate_yaml(self, content, **kwargs):
            ModelCard(content)

    monkeypatch.setattr(huggingface_hub.hf_api, "is_xet_available", lambda: False)
    folder = shutil.copytree(dry_run[0], tmp_path / "upload")
    (folder / "notes.txt").write_text("not allowed")
    (folder / ".git").mkdir()
    (folder / ".git" / "config").write_text("ignored")
    repo_files = [
        ".gitattributes", "loss-plot.png", "accuracy-plot.png", "confusion-matrix-2.png",
        "model-00001-of-00002.safetensors", "merges.txt", "notes.md", "images/loss-plot.png",
        "eval/confusion-matrix.png", "checkpoint-5/model.safetensors",
    ]  # fmt: skip
    allowed = [*sorted(EXPECTED_FILES - {"accuracy-plot.png"}), ".git/config"]
    kwargs = dict(repo_id=REPO, folder_path=folder, repo_type="model", allow_patterns=allowed)
    kwargs["delete_patterns"] = list(sharing.DELETE_PATTERNS)

    real = RecordingHfApi(token="hf_x")
    real.upload_folder(**kwargs)
    added = {op.path_in_repo for op in real.operations if isinstance(op, CommitOperationAdd)}
    deleted = {op.path_in_repo for op in real.operations if isinstance(op, CommitOperationDelete)}
    FakeHfApi.repos = {REPO: dict.fromkeys(repo_files, b"")}
    FakeHfApi.calls = []
    FakeHfApi().upload_folder(**kwargs)
    fake = FakeHfApi.calls[-1][1]
    assert (set(fake["files"]), set(fake["deleted"])) == (added, deleted)
    assert deleted == {"accuracy-plot.png", "confusion-matrix-2.png", "model-00001-of-00002.safetensors", "merges.txt"}  # fmt: skip


@pytest.fixture(scope="module")
def evaluated_dir(model_dir, tmp_path_factory) -> Path:
    """A copy of the trained folder with hf-spam evaluate's report in `eval/`, on a test split
    with flipped labels (so its scores differ from the training run's)."""
    folder = tmp_path_factory.mktemp("evaluated") / "run"
    shutil.copytree(model_dir, folder)
    noisy = write_spam_fixture(tmp_path_factory.mktemp("noisy") / "noisy.csv", rows=80, seed=3)
    lines = noisy.read_text(encoding="utf-8").splitlines()
    flipped = [
        line.rsplit(",", 1)[0] + ("," + ("ham" if line.endswith("spam") else "spam"))
        if i % 3 == 0 else line
        for i, line in enumerate(lines[1:])
    ]  # fmt: skip
    noisy.write_text("\n".join([lines[0], *flipped]) + "\n", encoding="utf-8")
    argv = ["evaluate", "--model", folder, "--dataset", noisy, "--eval_split", "test"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli_main([str(arg) for arg in [*argv, "--output_dir", folder / "eval"]]) == 0
    return folder


def test_eval_report_scores_reach_the_model_index(evaluated_dir, fake_hub):
    [entry] = json.loads((evaluated_dir / "eval" / "eval_report.json").read_text())["models"]
    trained = json.loads((evaluated_dir / "all_results.json").read_text())
    # Else this test could not tell the report's scores from the training run's.
    assert round(entry["metrics"]["accuracy"], 4) != round(trained["test_accuracy"], 4)

    sharing.push_model_folder(evaluated_dir, REPO, token="hf_x")
    hub = fake_hub.repos[REPO]
    card = _hub_card(hub)
    test = _index_scores(card, "test")
    assert test["accuracy"] == round(entry["metrics"]["accuracy"], 4)
    assert test["f1"] == round(entry["metrics"]["f1_macro"], 4)
    assert len([r for r in card.data.eval_results if r.dataset_split == "test"]) == 4
    # The other splits keep the training run's scores.
    validation = _index_scores(card, "validation")
    assert validation["accuracy"] == round(trained["validation_accuracy"], 4)
    # The report and its predictions (texts of the data) stay local.
    assert not [name for name in hub if name.startswith("eval") or name.endswith(".jsonl")]


def test_bad_eval_report_names_the_file(model_dir, tmp_path):
    folder = shutil.copytree(model_dir, tmp_path / "run", ignore=shutil.ignore_patterns("check*"))
    report = folder / "eval_report.json"

    def error(kind=HubError) -> str:
        with pytest.raises(kind) as raised:
            sharing.push_model_folder(folder, REPO, dry_run=True, upload_dir=tmp_path / "up")
        assert not (tmp_path / "up").exists()
        return str(raised.value)

    report.write_text('{"models": [')
    assert error(ModelLoadError).startswith(f"{report}, line 1, column 13: evaluation report")
    report.write_text(json.dumps({"models": []}))
    assert error() == (
        f"{report}: not an evaluation report of hf-spam evaluate (missing or malformed 'data')"
    )
    two = [
        {"model": f"runs/other-{i}", "metrics": {"accuracy": 0.9}, "num_examples": 3}
        for i in (1, 2)
    ]
    report.write_text(json.dumps({"data": {"split": "test"}, "models": two}))
    assert error() == (
        f"{report}: evaluates 2 models and none is {folder}; move the report out of the folder "
        "or evaluate this model alone"
    )


def test_no_token_or_refused_upload_raise_hub_errors(model_dir, fake_hub, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(sharing, "get_token", lambda: None)
    with pytest.raises(HubError, match=f"No Hugging Face token to push to {REPO}: run"):
        sharing.push_model_folder(tmp_path / "no-such-folder", REPO)  # the folder is read after
    assert fake_hub.calls == []

    folder = shutil.copytree(model_dir, tmp_path / "run")
    fake_hub.fail_upload = True
    with pytest.raises(HubError) as raised:
        sharing.push_model_folder(folder, REPO, token="hf_x")
    assert str(raised.value) == f"Pushing {folder} to {REPO} failed: Connection refused"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no upload folder left


def test_import_loads_no_data_libraries():
    """A push needs neither the data pipeline nor inference: importing sharing loads neither."""
    script = (
        "import json, sys, hf_spam.hub.sharing\n"
        "heavy = ('datasets', 'pyarrow', 'tiktoken', 'hf_spam.data', 'hf_spam.inference.load')\n"
        "print(json.dumps([name for name in heavy if name in sys.modules]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(sharing.__file__).parents[2])}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.splitlines()[-1]) == []
