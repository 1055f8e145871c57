"""The one way up to the Hub, for a model repo and for a Space: build the folder aside, stop there
for a dry run, else upload it in one commit, and clean up.

`push_model_folder` (sharing.py) and `push_space` (space.py) differ only in what they build and
check first; `upload_built_folder` does the rest. The folder is built inside `atomic_output_dir`,
so a failed build leaves nothing behind and an `output_dir` is replaced only once complete. It is
built in `output_dir` (kept) or in a temporary folder (kept only by a dry run, so what you inspect
is what would go up). A real push creates the repo if needed (`HfApi.create_repo(exist_ok=True)`)
and uploads exactly the files built with `HfApi.upload_folder`, one commit.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from huggingface_hub import HfApi

from ..errors import HubError
from ..files import atomic_output_dir

__all__ = ["RepoType", "UploadResult", "hub_page", "upload_built_folder"]

RepoType = Literal["model", "space"]
#: `build(folder, temporary)` writes the upload into `folder` and returns its files, relative;
#: `temporary` says the folder is deleted after the upload (so it may hard-link large files).
BuildFolder = Callable[[Path, bool], Sequence[Path]]


def hub_page(repo_id: str, repo_type: RepoType = "model") -> str:
    """The repo's page on the Hub."""
    return f"https://huggingface.co/{'spaces/' if repo_type == 'space' else ''}{repo_id}"


@dataclass
class UploadResult:
    """What was (or, in a dry run, would be) uploaded, and where it went."""

    repo_id: str
    #: The folder built; after a real push from a temporary folder it no longer exists.
    folder: Path
    #: Relative path -> size in bytes of every file uploaded (kept after the folder is deleted).
    files: dict[Path, int] = field(default_factory=dict)
    dry_run: bool = False
    url: str | None = None  # the commit on the Hub, after a real push
    repo_type: RepoType = "model"
    #: Repo files matching these and not in `files` are (or would be) deleted by the commit.
    delete_patterns: tuple[str, ...] = ()

    @property
    def page(self) -> str:
        return hub_page(self.repo_id, self.repo_type)


def _temporary_folder(repo_id: str, repo_type: RepoType, beside: Path | None) -> Path:
    """Beside `beside` when given, so its files can be hard-linked (same disk), hidden there so it
    does not clutter the user's folder; else, or if that parent is read-only, in the system's."""
    name = repo_id.split("/")[-1]
    if beside is not None:
        try:
            return Path(tempfile.mkdtemp(prefix=f".{name}-upload-", dir=beside.expanduser().parent))
        except OSError:
            pass
    return Path(tempfile.mkdtemp(prefix=f"{name}-{repo_type}-"))


def upload_built_folder(
    build: BuildFolder,
    repo_id: str,
    *,
    repo_type: RepoType = "model",
    what: str,
    commit_message: str,
    output_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    beside: str | os.PathLike | None = None,
    dry_run: bool = False,
    token: str | None = None,
    private: bool = False,
    delete_patterns: Sequence[str] = (),
    space_sdk: str | None = None,
) -> UploadResult:
    """Build the upload folder with `build` and, unless `dry_run`, upload it to `repo_id`.

    The folder is `output_dir` (refused if not empty unless `overwrite`, and kept) or a temporary
    folder (beside `beside` if given), deleted after a real push, failed or not. The commit
    uploads exactly the files `build` returned and deletes the repo's files that match
    `delete_patterns` and were not uploaded again. `private` and `space_sdk` apply when the repo
    is created; an existing repo keeps its settings. Ids and token are the caller's to check
    before calling (so a bad one fails before any work). Upload failures become one `HubError`
    line naming `what` was pushed where.
    """
    output_dir = Path(output_dir) if output_dir else None
    keep = dry_run or output_dir is not None
    folder = output_dir or _temporary_folder(repo_id, repo_type, Path(beside) if beside else None)
    try:
        with atomic_output_dir(folder, overwrite=overwrite) as tmp:
            files = sorted(build(tmp, not keep))
        sizes = {path: (folder / path).stat().st_size for path in files}
        result = UploadResult(
            repo_id,
            folder,
            sizes,
            dry_run=dry_run,
            repo_type=repo_type,
            delete_patterns=tuple(delete_patterns),
        )
        if not dry_run:
            result.url = _commit(result, token, private, commit_message, what, space_sdk)
        return result
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


def _commit(
    result: UploadResult,
    token: str | None,
    private: bool,
    commit_message: str,
    what: str,
    space_sdk: str | None,
) -> str:
    """Create the repo if needed and upload `result.folder` to it in one commit; the commit's URL.

    HTTP errors (HfHubHTTPError is an OSError), offline mode, connection failures and the
    ValueError huggingface_hub raises for a README the Hub rejects become one `HubError` line.
    """
    api = HfApi(token=token)
    repo_id, repo_type = result.repo_id, result.repo_type
    created = {"space_sdk": space_sdk} if space_sdk else {}
    # upload_folder reads allow_patterns as fnmatch patterns: escaped, a name like `plot[1].png`
    # matches itself only.
    allowed = [glob.escape(path.as_posix()) for path in result.files]
    deleted = {"delete_patterns": list(result.delete_patterns)} if result.delete_patterns else {}
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type=repo_type, **created)
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=result.folder,
            commit_message=commit_message,
            repo_type=repo_type,
            allow_patterns=allowed,
            **deleted,
        )
    except (OSError, ValueError) as err:
        raise HubError(f"Pushing {what} to {repo_id} failed: {err}") from err
    return getattr(commit, "commit_url", None) or result.page
