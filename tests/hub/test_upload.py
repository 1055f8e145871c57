"""hf_spam.hub.upload, the one upload path of the model and the Space, through huggingface_hub's
real `HfApi` talking to a stand-in of the Hub's HTTP API (its transport replaced): what reaches
the repo is what the build wrote and listed, the repo type and creation settings are the ones
asked for, a dry run sends nothing and keeps the folder, a failure leaves no temporary folder."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import huggingface_hub.hf_api
import pytest
from huggingface_hub import set_client_factory
from huggingface_hub.utils import _http

from hf_spam.errors import HubError
from hf_spam.hub.upload import upload_built_folder

#: The HTTP client huggingface_hub 2.x sends its requests with; its transport is what is replaced.
httpx2 = pytest.importorskip("httpx2")

REPO = "alice/demo"
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
#: What each build writes; a name with fnmatch syntax must still match only itself.
BUILT = {
    "README.md": b"---\nlicense: mit\n---\n# demo\n",
    "app.py": b"print('hi')\n",
    "hf_spam/__init__.py": b"",
    "plot[1].png": b"\x89PNG not really",
}


class FakeHubServer:
    """The Hub endpoints an upload calls, as the Hub answers them: create a repo, list its files,
    preupload (every file inlined in the commit), validate a README's YAML, commit (NDJSON of
    operations). Keeps each repo's files in `repos[(kind, repo_id)]`, kind `models`/`spaces`."""

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], dict[str, bytes]] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        self.created: list[dict] = []
        self.commits: list[list[dict]] = []
        self.refuse_commit = False

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        if path == "/api/agent-harnesses":  # huggingface_hub's own registry lookup, not the repo's
            return httpx2.Response(404, json={"error": "not here"})
        self.requests.append((request.method, path, request.headers.get("authorization")))
        if path == "/api/repos/create":
            body = json.loads(request.content)
            self.created.append(body)
            kind, repo_id = (
                f"{body.get('type', 'model')}s",
                f"{body['organization']}/{body['name']}",
            )
            self.repos.setdefault((kind, repo_id), {".gitattributes": GITATTRIBUTES})
            return httpx2.Response(200, json={"url": f"https://huggingface.co/{repo_id}"})
        if path == "/api/validate-yaml":
            return httpx2.Response(200, json={})
        match = re.fullmatch(
            r"/api/(models|spaces)/([^/]+/[^/]+)/(tree|preupload|commit)/main", path
        )
        files = self.repos.get(match.group(1, 2)) if match else None
        if files is None:
            return httpx2.Response(404, json={"error": "Repository not found"})
        kind, repo_id, action = match.groups()
        if action == "tree":
            listing = [
                {"type": "file", "path": p, "oid": "0" * 40, "size": len(b)}
                for p, b in files.items()
            ]
            return httpx2.Response(200, json=listing)
        if action == "preupload":
            asked = json.loads(request.content)["files"]
            modes = [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in asked
            ]
            return httpx2.Response(200, json={"files": modes})
        if self.refuse_commit:
            return httpx2.Response(403, json={"error": "You don't have the rights to push here"})
        operations = [json.loads(line) for line in request.content.decode().splitlines()]
        self.commits.append(operations)
        for op in operations:
            if op["key"] == "deletedFile":
                del files[op["value"]["path"]]
            elif op["key"] == "file":
                files[op["value"]["path"]] = base64.b64decode(op["value"]["content"])
        page = f"https://huggingface.co/{'spaces/' if kind == 'spaces' else ''}{repo_id}"
        return httpx2.Response(
            200, json={"commitUrl": f"{page}/commit/c0ffee", "commitOid": "c" * 40}
        )


@pytest.fixture
def hub(monkeypatch) -> FakeHubServer:
    server = FakeHubServer()
    monkeypatch.setattr(huggingface_hub.hf_api, "is_xet_available", lambda: False)
    set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(server)))
    yield server
    set_client_factory(_http.default_client_factory)  # the factory huggingface_hub starts with


class Build:
    """Writes `BUILT` (plus a file it does not list) and remembers how it was called."""

    def __init__(self) -> None:
        self.calls: list[tuple[Path, bool]] = []

    def __call__(self, folder: Path, temporary: bool) -> list[Path]:
        self.calls.append((folder, temporary))
        for name, content in BUILT.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(content)
        (folder / "scratch.log").write_text("not listed, not uploaded")
        return [Path(name) for name in BUILT]


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


@pytest.mark.parametrize("repo_type", ["model", "space"])
def test_push_uploads_exactly_the_listed_files_to_the_repo_type_asked(hub, tmp_path, repo_type):
    build = Build()
    sdk = "gradio" if repo_type == "space" else None
    result = upload_built_folder(
        build, REPO, repo_type=repo_type, what="the demo", commit_message="Add the demo",
        beside=tmp_path / "model", token="hf_secret", private=True, space_sdk=sdk,
    )  # fmt: skip
    kind = f"{repo_type}s"
    assert hub.repos == {(kind, REPO): {".gitattributes": GITATTRIBUTES, **BUILT}}
    [created] = hub.created
    assert created["visibility"] == "private" and created.get("type", "model") == repo_type
    assert created.get("sdk") == sdk
    assert {path for _, path, _ in hub.requests} >= {f"/api/{kind}/{REPO}/commit/main"}
    assert {auth for *_, auth in hub.requests} == {"Bearer hf_secret"}
    [commit] = hub.commits
    assert commit[0] == {"key": "header", "value": {"summary": "Add the demo", "description": ""}}
    page = f"https://huggingface.co/{'spaces/' if repo_type == 'space' else ''}{REPO}"
    assert result.url == f"{page}/commit/c0ffee" and result.page == page
    assert result.files == {Path(name): len(content) for name, content in BUILT.items()}
    assert not result.dry_run and result.repo_type == repo_type
    [(built_in, temporary)] = build.calls
    assert temporary and not result.folder.exists() and not built_in.exists()
    assert list(tmp_path.iterdir()) == []  # the temporary folder beside `model` is gone


def test_dry_run_sends_nothing_and_leaves_the_folder(hub, tmp_path):
    build = Build()
    kept = upload_built_folder(
        build, REPO, what="the demo", commit_message="m", output_dir=tmp_path / "out", dry_run=True
    )
    assert hub.requests == [] and hub.repos == {}
    assert kept.dry_run and kept.url is None and kept.folder == tmp_path / "out"
    assert _files(kept.folder) == {**BUILT, "scratch.log": b"not listed, not uploaded"}
    assert kept.files == {Path(name): len(content) for name, content in BUILT.items()}

    temporary = upload_built_folder(
        build, REPO, what="the demo", commit_message="m", beside=tmp_path / "model", dry_run=True
    )
    assert hub.requests == []
    assert temporary.folder.parent == tmp_path and temporary.folder.name.startswith(".demo-")
    assert _files(temporary.folder).keys() == _files(kept.folder).keys()
    assert [flag for _, flag in build.calls] == [False, False]  # kept folders get no hard links


def test_a_failed_upload_or_build_leaves_no_temporary_folder(hub, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    hub.refuse_commit = True
    with pytest.raises(HubError) as raised:
        upload_built_folder(
            Build(), REPO, what="the demo", commit_message="m", beside=model, token="hf_x"
        )
    assert str(raised.value).startswith(f"Pushing the demo to {REPO} failed: 403")
    assert list(tmp_path.iterdir()) == [model]
    assert hub.repos == {("models", REPO): {".gitattributes": GITATTRIBUTES}}  # created, no commit

    hub.requests.clear()

    def full_disk(folder: Path, temporary: bool) -> list[Path]:
        (folder / "half.bin").write_bytes(b"x")
        raise OSError(28, "No space left on device")

    for output_dir in (None, tmp_path / "out"):
        with pytest.raises(OSError, match="No space left"):
            upload_built_folder(
                full_disk, REPO, what="x", commit_message="m", output_dir=output_dir, beside=model
            )
    assert list(tmp_path.iterdir()) == [model] and hub.requests == []

    kept = tmp_path / "kept"
    with pytest.raises(HubError):
        upload_built_folder(
            Build(), REPO, what="the demo", commit_message="m", output_dir=kept, token="hf_x"
        )
    assert _files(kept).keys() >= BUILT.keys()  # a folder asked for stays, to push again


def test_delete_patterns_remove_stale_files_and_nothing_else(hub, tmp_path):
    hub.repos[("models", REPO)] = {
        ".gitattributes": GITATTRIBUTES, "old-plot.png": b"old", "app.py": b"old",
        "notes.md": b"mine",
    }  # fmt: skip
    result = upload_built_folder(
        Build(), REPO, what="x", commit_message="m", token="hf_x",
        delete_patterns=("old-plot.png", "app.py", "README.md"),
    )  # fmt: skip
    assert hub.repos[("models", REPO)] == {
        ".gitattributes": GITATTRIBUTES, "notes.md": b"mine", **BUILT
    }  # fmt: skip
    deleted = [op["value"]["path"] for op in hub.commits[0] if op["key"] == "deletedFile"]
    assert deleted == ["old-plot.png"]  # app.py and README.md are uploaded again, not deleted
    assert result.delete_patterns == ("old-plot.png", "app.py", "README.md")
