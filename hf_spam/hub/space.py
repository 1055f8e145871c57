"""A Hugging Face Space for a pushed model: the hf_spam demo as a Gradio Space, ready to upload.

`build_space_folder` writes everything the Space runs, and `push_space` uploads exactly that
folder (with `dry_run=True` it stops after building it, so what you inspect is what would go up):

* `app.py`: runs `hf_spam.demo.app` against the model repo (`HF_SPAM_MODEL` overrides it, e.g. with
  a local model folder, so `python app.py` works offline);
* `requirements.txt`: hf_spam's own requirements, torch from the CPU wheel index;
* `README.md`: the Space card (`sdk: gradio`, its pinned version, `app_file: app.py`, `models:`
  linking the model repo, so the model page lists the Space);
* `hf_spam/`: a copy of the package, which is not on PyPI;
* `examples.json`: the model folder's example texts, when it has them.
"""

from __future__ import annotations

import os
import shutil
from importlib.metadata import PackageNotFoundError, requires, version
from pathlib import Path

from huggingface_hub import SpaceCard, SpaceCardData

from ..constants import EXAMPLES_FILE
from ..errors import UsageError
from ..reporting import format_table
from .upload import UploadResult, upload_built_folder

__all__ = [
    "build_space_folder",
    "check_space_id",
    "format_space_result",
    "push_space",
]

DEFAULT_SPACE_COMMIT_MESSAGE = "Gradio demo of an hf_spam classifier"
#: pip reads this line of requirements.txt: without it a Space's CPU machine installs CUDA torch.
CPU_TORCH_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"
MODEL_ENV = "HF_SPAM_MODEL"

APP_TEMPLATE = '''"""Gradio Space: try {model_repo_id} (a GPT spam classifier trained with hf_spam).

Runs the hf_spam demo (the package is copied beside this file) against the model repo. Set
{model_env} to a local model folder or another repo id to run it elsewhere, and pass any
`hf-spam demo` flag:

    {model_env}=runs/spam python app.py --port 8080
"""

import os
import sys

from hf_spam.cli import main

MODEL = os.environ.get("{model_env}", "{model_repo_id}")
EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "{examples}")

if __name__ == "__main__":
    if os.environ.get("SPACE_ID"):  # on Spaces: listen where the Space's proxy looks
        os.environ.setdefault("GRADIO_SERVER_NAME", "0.0.0.0")
    examples = ["--examples", EXAMPLES] if os.path.isfile(EXAMPLES) else []
    sys.exit(main(["demo", "--model", MODEL, *examples, *sys.argv[1:]]))
'''

CARD_BODY = """
# {title}

A Gradio demo of [{model_repo_id}](https://huggingface.co/{model_repo_id}), a GPT classifier
fine-tuned with hf_spam following chapter 6 of [*Build a Large Language Model (From
Scratch)*](https://github.com/rasbt/LLMs-from-scratch). Type a message to see its label, each class's
probability and which tokens pushed it towards spam (gradient × input); the Batch tab classifies
a CSV or text file.

Run it locally: `pip install -r requirements.txt gradio=={gradio_version} && python app.py`.
"""


def check_space_id(space_id: str) -> None:
    """A well-formed `USER/NAME` Space id, checked before anything is built or pushed."""
    from .sharing import check_repo_id

    check_repo_id(space_id, "--space", "Space id")


def _installed_requirements() -> list[str]:
    """hf_spam's runtime requirements (no extras), as the installed package declares them."""
    try:
        declared = requires("hf_spam") or []
    except PackageNotFoundError:
        raise UsageError(
            "hf_spam is not installed (pip install -e .): the Space installs its requirements"
        ) from None
    return [line for line in declared if "extra ==" not in line]


def gradio_version() -> str:
    """The gradio version the Space runs: the installed one the demo was tested with."""
    try:
        return version("gradio")
    except PackageNotFoundError:
        raise UsageError('building a Space needs gradio: pip install -e ".[demo]"') from None


def build_space_folder(
    model_repo_id: str,
    target_dir: str | os.PathLike,
    *,
    model_dir: str | os.PathLike | None = None,
    title: str | None = None,
) -> list[Path]:
    """Write the Space for `model_repo_id` into `target_dir`; return the files, relative, sorted.

    `model_dir`, the local folder the model was pushed from, contributes its `examples.json`.
    """
    target = Path(target_dir)
    target.mkdir(parents=True, exist_ok=True)
    title = title or f"{model_repo_id.split('/')[-1]} demo"
    sdk_version = gradio_version()
    app = APP_TEMPLATE.format(
        model_repo_id=model_repo_id, model_env=MODEL_ENV, examples=EXAMPLES_FILE
    )
    (target / "app.py").write_text(app, encoding="utf-8")
    requirements = [CPU_TORCH_INDEX, *_installed_requirements()]
    (target / "requirements.txt").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    data = SpaceCardData(
        title=title[:30],  # the Hub rejects longer Space titles
        sdk="gradio",
        sdk_version=sdk_version,
        app_file="app.py",
        models=[model_repo_id],
        license="apache-2.0",  # the hf_spam code copied into the Space,
        tags=["text-classification", "llms-from-scratch"],
    )
    body = CARD_BODY.format(title=title, model_repo_id=model_repo_id, gradio_version=sdk_version)
    SpaceCard(f"---\n{data.to_yaml()}\n---\n{body}").save(target / "README.md")
    package = Path(__file__).resolve().parents[1]  # hf_spam/, this module being in hf_spam/hub/
    shutil.copytree(
        package, target / "hf_spam", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    if model_dir is not None and (Path(model_dir) / EXAMPLES_FILE).is_file():
        shutil.copy2(Path(model_dir) / EXAMPLES_FILE, target / EXAMPLES_FILE)
    return sorted(path.relative_to(target) for path in target.rglob("*") if path.is_file())


def push_space(
    space_id: str,
    model_repo_id: str,
    *,
    model_dir: str | os.PathLike | None = None,
    dry_run: bool = False,
    output_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    token: str | None = None,
    private: bool = False,
    commit_message: str = DEFAULT_SPACE_COMMIT_MESSAGE,
) -> UploadResult:
    """Build the Space folder and upload it to `space_id` (a Gradio Space, created if needed).

    Ids and token are checked before anything is built; `upload_built_folder` does the rest. The
    folder goes to `output_dir` (refused if not empty unless `overwrite`) or a temporary folder,
    kept for a dry run and deleted after a real push. `private` applies when the Space is created.
    """
    from .sharing import check_repo_id, require_token

    check_space_id(space_id)
    check_repo_id(model_repo_id)
    if not dry_run:
        token = require_token(token)
    return upload_built_folder(
        lambda target, temporary: build_space_folder(model_repo_id, target, model_dir=model_dir),
        space_id,
        repo_type="space",
        what="the Space",
        commit_message=commit_message,
        output_dir=output_dir,
        overwrite=overwrite,
        dry_run=dry_run,
        token=token,
        private=private,
        space_sdk="gradio",
    )


def format_space_result(result: UploadResult) -> str:
    """What hf-spam push --space prints: where it went (or would go), then the top-level files."""
    total = sum(result.files.values())
    where = result.page
    if result.dry_run:
        head = f"Dry run: would upload {len(result.files)} files ({total / 1024:.0f} KB) to {where}"
        head += f" from {result.folder}\nTry it: cd {result.folder} && {MODEL_ENV}=MODEL_FOLDER python app.py"
    else:
        head = f"Uploaded {len(result.files)} files ({total / 1024:.0f} KB) to {result.url}"
    top: dict[str, int] = {}
    for path, size in result.files.items():
        name = path.parts[0] + ("/" if len(path.parts) > 1 else "")
        top[name] = top.get(name, 0) + size
    rows = [{"file": name, "size": f"{size / 1024:.1f} KB"} for name, size in top.items()]
    return head + "\n" + format_table(rows)
