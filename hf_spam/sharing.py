"""Share a trained model on the Hugging Face Hub: build the exact folder to upload, then push it.

A training output folder holds more than a Hub repo should (checkpoints, optimizer state, trainer
state), and its model card names the local folder in its usage snippet. `build_upload_folder`
copies only what a user of the repo needs (weights, config with `auto_map`, the modeling code,
tokenizer, plots) and renders `README.md` again with the repo id, so the snippet works when
pasted. `push_model_folder` checks the token and the folder before any work, builds that folder
and uploads it, or with `dry_run=True` stops after building it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import HfApi, ModelCard, get_token
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from .constants import SPLITS, TIMING_SUFFIXES, TOKENIZER_FILES, is_number
from .errors import HubError
from .files import atomic_output_dir, check_model_folder
from .reporting import CARD_CONTEXT_FILE, format_table, render_model_card

__all__ = [
    "CARD_CONTEXT_FILE",
    "HubError",
    "PushResult",
    "build_upload_folder",
    "check_repo_id",
    "format_push_result",
    "load_card_context",
    "push_model_folder",
    "require_token",
    "upload_file_names",
]

#: Where training may save the context its model card was rendered with (read back here).
DEFAULT_COMMIT_MESSAGE = "Upload GPT classifier fine-tuned with hf_spam"
MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors")
SHARDED_WEIGHTS = ("model.safetensors.index.json", "model-*-of-*.safetensors")
EXTRA_TOKENIZER_FILES = ("special_tokens_map.json", "vocab.json", "merges.txt", "added_tokens.json")
#: Plots in the order the card shows them; any other top-level PNG follows.
KNOWN_PLOTS = ("loss-plot.png", "accuracy-plot.png", "confusion-matrix.png")


@dataclass
class PushResult:
    """What was (or, in a dry run, would be) uploaded, and where it went."""

    repo_id: str
    upload_dir: Path
    #: Relative path -> size in bytes of every uploaded file (kept after a temporary
    #: upload folder is deleted).
    files: dict[Path, int] = field(default_factory=dict)
    dry_run: bool = False
    url: str | None = None  # the commit on the Hub, after a real push


def require_token(token: str | None = None) -> str:
    """The token to push with: `token`, else `HF_TOKEN`, else the stored `hf auth login` one.

    Called before any work, so a missing login fails in a second, not after a build.
    """
    token = token or get_token()
    if not token:
        raise HubError(
            "No Hugging Face token: run `hf auth login`, set HF_TOKEN, or pass --token "
            "(a token with write access). --dry_run builds the upload folder without one."
        )
    return token


def check_repo_id(repo_id: str) -> None:
    """A well-formed `namespace/name` model repo id, checked offline before any work."""
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise HubError(f"--repo_id {repo_id!r} is not a valid Hub repo id ({err})") from None
    if "/" not in repo_id:
        raise HubError(f"--repo_id {repo_id!r}: expected USER/NAME or ORGANIZATION/NAME")


def _code_files(config: Mapping[str, Any], config_path: Path) -> list[str]:
    """The Python files `auto_map` points at: what `trust_remote_code=True` downloads."""
    auto_map = config.get("auto_map")
    if not auto_map:
        raise HubError(
            f"{config_path} has no auto_map, so the Hub could not load the model without hf_spam; "
            "save it again with hf_spam imported (model.save_pretrained(folder))"
        )
    references: list[str] = []
    for value in auto_map.values():
        references.extend(value if isinstance(value, list) else [value])
    # `repo--module.Class` points at another repo's code; nothing to copy for it.
    return sorted({ref.split(".")[0] + ".py" for ref in references if ref and "--" not in ref})


def _plot_files(model_dir: Path) -> list[str]:
    found = {path.name for path in model_dir.glob("*.png")}
    return [name for name in KNOWN_PLOTS if name in found] + sorted(found - set(KNOWN_PLOTS))


def upload_file_names(model_dir: str | os.PathLike) -> list[str]:
    """Files of `model_dir` that go to the Hub (besides the re-rendered README.md).

    Weights, config, the code `auto_map` names, tokenizer files and plots; never checkpoints,
    optimizer or trainer state. Raises `ModelLoadError`/`HubError` naming anything missing.
    """
    model_dir = check_model_folder(model_dir)
    config_path = model_dir / "config.json"
    code = _code_files(json.loads(config_path.read_text(encoding="utf-8")), config_path)
    missing = [name for name in code if not (model_dir / name).is_file()]
    if missing:
        raise HubError(f"{model_dir}: auto_map names {', '.join(missing)}, which is missing")
    names = [name for name in MODEL_FILES if (model_dir / name).is_file()]
    names += sorted(path.name for pattern in SHARDED_WEIGHTS for path in model_dir.glob(pattern))
    names += code
    names += [
        name for name in (*TOKENIZER_FILES, *EXTRA_TOKENIZER_FILES) if (model_dir / name).is_file()
    ]
    return names + _plot_files(model_dir)


# --------------------------------------------------------------------------------------------
# Model card
# --------------------------------------------------------------------------------------------


def _context_from_results(results: Mapping[str, Any]) -> dict[str, Any]:
    """Card values from `all_results.json` (flat `<split>_<metric>` keys, `<split>_samples`,
    `confusion_matrix: {split: matrix}`)."""
    context: dict[str, Any] = {"results": {}, "split_sizes": {}}
    for split in SPLITS:
        metrics = {
            key: value
            for key, value in results.items()
            if key.startswith(f"{split}_") and is_number(value)
            if not key.endswith(TIMING_SUFFIXES)
        }
        if metrics:
            context["results"][split] = metrics
        if f"{split}_samples" in results:
            context["split_sizes"][split] = results[f"{split}_samples"]
    matrices = results.get("confusion_matrix") or {}
    if matrices.get("test"):
        context["confusion_matrix"] = matrices["test"]
        context["confusion_matrix_split"] = "test"
    for key in ("trainable_parameters", "total_parameters"):
        if key in results:
            context[key] = results[key]
    if is_number(results.get("train_runtime")):
        context["training_time"] = f"{results['train_runtime']:.0f} s"
    return context


def _context_from_card(readme: Path) -> dict[str, Any]:
    """Base model, dataset, license and language from the card training wrote.

    Without a readable card the base model and dataset are unknown, and the new card says so
    rather than claim the defaults (GPT-2, SMS Spam Collection).
    """
    unknown = {"base_model": None, "dataset_id": None}
    if not readme.is_file():  # ModelCard.load would look the name up on the Hub
        return unknown
    try:
        data = ModelCard.load(readme).data
    except (ValueError, yaml.YAMLError):  # malformed metadata
        return unknown
    context = {
        "base_model": data.base_model,
        "dataset_id": data.datasets[0] if data.datasets else None,
    }
    if data.eval_results:
        context["dataset_name"] = data.eval_results[0].dataset_name
    for key in ("license", "language"):
        if getattr(data, key, None):
            context[key] = getattr(data, key)
    return context


def load_card_context(model_dir: str | os.PathLike) -> dict[str, Any]:
    """The values to render the model folder's card with (see `model_card.md`).

    `card_context.json` when training saved it; otherwise rebuilt from `config.json` (labels),
    `all_results.json` (scores, split sizes, confusion matrix, parameter counts) and the
    metadata of the folder's `README.md`. Training details only the run knew (hyperparameters,
    data preparation) then show as n/a.
    """
    model_dir = Path(model_dir)
    saved = model_dir / CARD_CONTEXT_FILE
    if saved.is_file():
        return json.loads(saved.read_text(encoding="utf-8"))
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    context: dict[str, Any] = {"labels": config.get("id2label")}
    context.update(_context_from_card(model_dir / "README.md"))
    results = model_dir / "all_results.json"
    if results.is_file():
        context.update(_context_from_results(json.loads(results.read_text(encoding="utf-8"))))
    return context


# --------------------------------------------------------------------------------------------
# Upload folder and push
# --------------------------------------------------------------------------------------------


def build_upload_folder(
    model_dir: str | os.PathLike, target_dir: str | os.PathLike, repo_id: str
) -> list[Path]:
    """Copy what the Hub repo needs from `model_dir` into `target_dir` and render `README.md`
    for `repo_id`. Returns the files written, relative to `target_dir`, sorted."""
    model_dir, target_dir = Path(model_dir), Path(target_dir)
    names = upload_file_names(model_dir)
    context = load_card_context(model_dir)
    context.pop("model_name", None)  # the model-index takes the repo's name
    context["repo_id"] = repo_id
    context["plots"] = [name for name in names if name.endswith(".png")]
    target_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy2(model_dir / name, target_dir / name)
    render_model_card(None, target_dir / "README.md", context=context)
    return sorted(Path(name) for name in [*names, "README.md"])


def push_model_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    dry_run: bool = False,
    commit_message: str = DEFAULT_COMMIT_MESSAGE,
    upload_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> PushResult:
    """Upload a trained model folder to the Hub repo `repo_id` (created if needed).

    Checks the repo id, the token (unless `dry_run`) and the folder before building anything.
    The upload folder is built in `upload_dir` (refused if not empty unless `overwrite`) or a
    temporary folder. `dry_run=True` stops after building it and keeps it, so it can be
    inspected; a real push deletes a temporary one afterwards. `private` applies when the repo
    is created; an existing repo keeps its visibility.
    """
    check_repo_id(repo_id)
    if not dry_run:
        token = require_token(token)
    upload_file_names(folder)  # fail on an incomplete folder before creating anything
    keep = dry_run or upload_dir is not None
    if upload_dir is None:
        upload_dir = tempfile.mkdtemp(prefix=f"{repo_id.split('/')[-1]}-upload-")
    upload_dir = Path(upload_dir)
    try:
        with atomic_output_dir(upload_dir, overwrite=overwrite) as tmp:
            files = build_upload_folder(folder, tmp, repo_id)
        sizes = {path: (upload_dir / path).stat().st_size for path in files}
        result = PushResult(repo_id, upload_dir, sizes, dry_run=dry_run)
        if dry_run:
            return result
        api = HfApi(token=token)
        try:
            api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            commit = api.upload_folder(
                repo_id=repo_id,
                folder_path=upload_dir,
                commit_message=commit_message,
                repo_type="model",
            )
        except OSError as err:  # HTTP errors, offline mode and connection failures
            raise HubError(f"Pushing {folder} to {repo_id} failed: {err}") from err
        result.url = getattr(commit, "commit_url", None) or f"https://huggingface.co/{repo_id}"
        return result
    finally:
        if not keep:
            shutil.rmtree(upload_dir, ignore_errors=True)


def _size(num_bytes: int) -> str:
    for unit in ("B", "KB", "MB"):
        if num_bytes < 1024:
            return f"{num_bytes:.0f} {unit}" if unit == "B" else f"{num_bytes:.1f} {unit}"
        num_bytes /= 1024
    return f"{num_bytes:.1f} GB"


def format_push_result(result: PushResult) -> str:
    """The file listing scripts/push_to_hub.py prints, with what happened above it."""
    total = _size(sum(result.files.values()))
    if result.dry_run:
        head = (
            f"Dry run: would upload {len(result.files)} files ({total}) to "
            f"https://huggingface.co/{result.repo_id} from {result.upload_dir}"
        )
    else:
        head = f"Uploaded {len(result.files)} files ({total}) to {result.url}"
    rows = [{"file": str(path), "size": _size(size)} for path, size in result.files.items()]
    return head + "\n" + format_table(rows)
