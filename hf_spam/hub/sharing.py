"""Share a trained model on the Hugging Face Hub with `HfApi.upload_folder`, in one commit.

A training output folder holds more than a Hub repo should (checkpoints, optimizer state, trainer
state, an evaluation's predictions), and its model card names the local folder in its usage
snippet. `push_model_folder` checks the repo id, the token and the folder before any work, builds
the upload folder (the files a user needs, plus `README.md` rendered for the repo id
with the scores of an `eval_report.json` in its model-index), and uploads it through the one
upload path (`upload.py`, shared with the Space) with `delete_patterns`: files hf_spam wrote on an
earlier push and no longer part of the model (an old plot, old weight shards) are deleted in the
same commit, anything else in the repo is left alone. `dry_run=True` stops after building that
folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from huggingface_hub import get_token
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from ..constants import EVAL_REPORT_FILE, EXAMPLES_FILE, TOKENIZER_FILES, is_number
from ..errors import HubError
from ..files import read_config, read_json
from ..inference.checks import check_classifier_folder
from ..reporting import format_table
from .card import CARD_CONTEXT_FILE, load_card_context
from .checks import check_inside, code_files, code_sources
from .rendering import render_model_card
from .upload import UploadResult, upload_built_folder

if TYPE_CHECKING:
    from transformers import TrainingArguments

__all__ = [
    "CARD_CONTEXT_FILE",
    "DELETE_PATTERNS",
    "EVAL_REPORT_FILE",
    "EVAL_REPORT_PATHS",
    "HubError",
    "build_upload_folder",
    "check_repo_id",
    "eval_report_results",
    "format_push_result",
    "hub_model_id",
    "load_card_context",
    "push_model_folder",
    "repo_card_context",
    "require_token",
    "upload_file_names",
]

DEFAULT_COMMIT_MESSAGE = "Upload GPT classifier fine-tuned with hf_spam"
MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", EXAMPLES_FILE)
SHARDED_WEIGHTS = ("model.safetensors.index.json", "model-*-of-*.safetensors")
EXTRA_TOKENIZER_FILES = ("special_tokens_map.json", "vocab.json", "merges.txt", "added_tokens.json")
#: Plots in the order the card shows them; any other top-level PNG follows.
KNOWN_PLOTS = ("loss-plot.png", "accuracy-plot.png", "confusion-matrix.png")
#: Where a model folder's evaluation report is looked for, in this order: the folder itself,
#: then `eval/` (hf-spam evaluate's own example: `--output_dir runs/spam/eval`).
EVAL_REPORT_PATHS = (EVAL_REPORT_FILE, f"eval/{EVAL_REPORT_FILE}")
#: Hub files a re-push deletes unless it uploads them again: only names hf_spam itself writes.
#: huggingface_hub matches with fnmatch, where `*` crosses `/`, so every pattern starts with a
#: fixed top-level name (no `*.png`, which would also match `images/logo.png` added by hand).
DELETE_PATTERNS = (
    *MODEL_FILES,
    *SHARDED_WEIGHTS,
    *TOKENIZER_FILES,
    *EXTRA_TOKENIZER_FILES,
    "loss-plot.png",
    "accuracy-plot.png",
    "confusion-matrix*.png",
)


def require_token(token: str | None = None, repo_id: str | None = None) -> str:
    """The token to push with: `token`, else `HF_TOKEN`, else the stored `hf auth login` one.

    Called before any work, so a missing login fails at once, not after a build.
    """
    token = token or get_token()
    if not token:
        where = f" to push to {repo_id}" if repo_id else ""
        raise HubError(
            f"No Hugging Face token{where}: run `hf auth login`, set HF_TOKEN, or pass --token "
            "(a token with write access). --dry_run builds the upload folder without one."
        )
    return token


def check_repo_id(repo_id: str, flag: str = "--repo_id", kind: str = "Hub repo id") -> None:
    """A well-formed `namespace/name` repo id (`kind`, given as `flag`), checked offline before
    any work."""
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise HubError(f"{flag} {repo_id!r} is not a valid {kind} ({err})") from None
    if "/" not in repo_id:
        raise HubError(f"{flag} {repo_id!r}: expected USER/NAME or ORGANIZATION/NAME")


def hub_model_id(training_args: TrainingArguments, token: str) -> str:
    """--hub_model_id, or as `Trainer` derives it: the output folder's name in the namespace of
    the token's user."""
    repo_id = training_args.hub_model_id or Path(training_args.output_dir).absolute().name
    if "/" in repo_id:
        return repo_id
    import huggingface_hub

    try:
        user = huggingface_hub.whoami(token=token)["name"]
    except Exception as err:  # offline, a revoked token, ...: one line, not the HTTP trace
        raise HubError(
            f"--push_to_hub without --hub_model_id: cannot look up the token's user name "
            f"({type(err).__name__}); pass --hub_model_id USER/NAME"
        ) from err
    return f"{user}/{repo_id}"


def _plot_files(model_dir: Path) -> list[str]:
    found = {path.name for path in model_dir.glob("*.png")}
    return [name for name in KNOWN_PLOTS if name in found] + sorted(found - set(KNOWN_PLOTS))


def upload_file_names(model_dir: str | os.PathLike, replace_code: bool = False) -> list[str]:
    """Files of `model_dir` that go to the Hub (besides the re-rendered README.md).

    Weights, config, the code `auto_map` names, tokenizer files and plots; never checkpoints,
    optimizer or trainer state. The folder passes the check every command makes of a model
    folder (`check_classifier_folder`), then a push's own (`checks.py`): files inside the folder,
    hf_spam's classes and code (`replace_code`: the package's code is uploaded instead). Raises
    `ModelLoadError`/`HubError` naming the file or key at fault.
    """
    model_dir = check_classifier_folder(model_dir)
    code = code_files(read_config(model_dir), model_dir / "config.json")
    missing = [name for name in code if not (model_dir / name).is_file() and not replace_code]
    if missing:
        raise HubError(f"{model_dir}: auto_map names {', '.join(missing)}, which is missing")
    names = [name for name in MODEL_FILES if (model_dir / name).is_file()]
    names += sorted(path.name for pattern in SHARDED_WEIGHTS for path in model_dir.glob(pattern))
    names += [
        name for name in (*TOKENIZER_FILES, *EXTRA_TOKENIZER_FILES) if (model_dir / name).is_file()
    ]
    names += _plot_files(model_dir)
    check_inside(model_dir, names)
    code_sources(model_dir, code, replace_code)  # refuses a differing copy before any work
    return names + code


# --------------------------------------------------------------------------------------------
# The card for the repo: the folder's context, the repo id, an evaluation report's scores
# --------------------------------------------------------------------------------------------


def _report_entry(models: list[Mapping[str, Any]], model_dir: Path, path: Path) -> Mapping:
    """The report's entry for `model_dir`: the one naming this folder, else the only one."""
    for entry in models:
        named = Path(str(entry.get("model", "")))
        if named.name == model_dir.name or named.resolve() == model_dir.resolve():
            return entry
    if len(models) == 1:  # the report sits in the folder; the folder may have moved since
        return models[0]
    raise HubError(
        f"{path}: evaluates {len(models)} models and none is {model_dir}; move the report out "
        "of the folder or evaluate this model alone"
    )


def eval_report_results(model_dir: str | os.PathLike) -> tuple[str, dict[str, Any]] | None:
    """`(split, card values)` from the folder's evaluation report (`EVAL_REPORT_PATHS`), or
    None without one: the split's scores (`results`), size and confusion matrix, as the card
    context names them. The report's split is a split of the training data rebuilt the way
    training made it (or `all` of it), so its scores are listed under the card's dataset."""
    model_dir = Path(model_dir)
    path = next((model_dir / p for p in EVAL_REPORT_PATHS if (model_dir / p).is_file()), None)
    if path is None:
        return None
    report = read_json(path, "evaluation report")
    try:
        split = str(report["data"]["split"])
        entry = _report_entry(list(report["models"]), model_dir, path)
        metrics = {key: value for key, value in entry["metrics"].items() if is_number(value)}
        values = {"results": metrics, "size": entry["num_examples"]}
        values["confusion_matrix"] = entry.get("confusion_matrix")
    except (KeyError, TypeError, AttributeError) as err:
        raise HubError(
            f"{path}: not an evaluation report of hf-spam evaluate (missing or malformed {err})"
        ) from None
    if not is_number(metrics.get("accuracy")):
        raise HubError(f"{path}: the report's metrics have no accuracy")
    return split, values


def repo_card_context(
    model_dir: str | os.PathLike, repo_id: str, plots: list[str]
) -> dict[str, Any]:
    """The context to render the repo's `README.md` with: the folder's card context for
    `repo_id`, the `plots` uploaded, and an evaluation report's scores replacing the training
    run's for the same split, in the body and in the model-index (as `metadata_update` replaces
    an equal metric on the Hub; rendered here so the card goes up in the same commit)."""
    context = load_card_context(model_dir)
    context.pop("model_name", None)  # the model-index takes the repo's name
    context["repo_id"] = repo_id
    context["plots"] = plots
    evaluated = eval_report_results(model_dir)
    if evaluated:
        split, values = evaluated
        context["results"] = {**(context.get("results") or {}), split: values["results"]}
        context["split_sizes"] = {**(context.get("split_sizes") or {}), split: values["size"]}
        if values["confusion_matrix"] and split == context.get("confusion_matrix_split", "test"):
            context["confusion_matrix"] = values["confusion_matrix"]
    return context


# --------------------------------------------------------------------------------------------
# Upload folder and push
# --------------------------------------------------------------------------------------------


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link costs no space or time for multi-GB weights; other disks need a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def build_upload_folder(
    model_dir: str | os.PathLike,
    target_dir: str | os.PathLike,
    repo_id: str,
    *,
    link: bool = False,
    replace_code: bool = False,
) -> list[Path]:
    """Put what the Hub repo needs from `model_dir` into `target_dir` and render `README.md`
    for `repo_id`. Returns the files written, relative to `target_dir`, sorted.

    `link=True` hard-links the files, for a folder deleted after the upload; a folder that is
    kept gets copies, which a later save into `model_dir` (writing files in place) cannot alter.
    `replace_code`: the installed package's code files in place of the folder's.
    """
    model_dir, target_dir = Path(model_dir), Path(target_dir)
    names = upload_file_names(model_dir, replace_code)
    code = code_files(read_config(model_dir), model_dir / "config.json")
    sources = {name: model_dir / name for name in names} | code_sources(
        model_dir, code, replace_code
    )
    context = repo_card_context(model_dir, repo_id, [n for n in names if n.endswith(".png")])
    target_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        if link:
            _link_or_copy(sources[name], target_dir / name)
        else:
            shutil.copy2(sources[name], target_dir / name)
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
    replace_code: bool = False,
) -> UploadResult:
    """Upload a trained model folder to the Hub repo `repo_id` (created if needed), in one commit.

    Checks the repo id, the token (unless `dry_run`) and the folder before building anything.
    `upload_folder` takes a single folder and the repo's README is not the folder's (its snippet
    names the repo), so the upload folder is built first (the model's files, hard-linked when the
    folder is temporary, and the README rendered for the repo) and uploaded as one commit that
    also deletes stale files (`DELETE_PATTERNS`); `upload_built_folder` runs that. It is built in
    `upload_dir` (refused if not empty unless `overwrite`), else in a temporary folder beside the
    model folder, deleted after a real push; `dry_run=True` stops after building it and keeps it.
    `private` applies when the repo is created; an existing repo keeps its visibility.
    """
    check_repo_id(repo_id)
    if not dry_run:
        token = require_token(token, repo_id)
    upload_file_names(folder, replace_code)  # fail on a bad folder before creating anything
    eval_report_results(folder)  # and on an unreadable evaluation report
    return upload_built_folder(
        lambda target, temporary: build_upload_folder(
            folder, target, repo_id, link=temporary, replace_code=replace_code
        ),
        repo_id,
        what=str(folder),
        commit_message=commit_message,
        output_dir=upload_dir,
        overwrite=overwrite,
        beside=folder,
        dry_run=dry_run,
        token=token,
        private=private,
        delete_patterns=DELETE_PATTERNS,
    )


def _size(num_bytes: int) -> str:
    for unit in ("B", "KB", "MB"):
        if num_bytes < 1024:
            return f"{num_bytes:.0f} {unit}" if unit == "B" else f"{num_bytes:.1f} {unit}"
        num_bytes /= 1024
    return f"{num_bytes:.1f} GB"


def format_push_result(result: UploadResult) -> str:
    """The file listing scripts/push_to_hub.py prints, with what happened above it."""
    total = _size(sum(result.files.values()))
    if result.dry_run:
        head = (
            f"Dry run: would upload {len(result.files)} files ({total}) to "
            f"{result.page} from {result.folder}"
        )
    else:
        head = f"Uploaded {len(result.files)} files ({total}) to {result.url}"
    rows = [{"file": str(path), "size": _size(size)} for path, size in result.files.items()]
    deleted = (
        f"Repo files not listed here and matching {', '.join(result.delete_patterns)} "
        f"{'would be' if result.dry_run else 'were'} deleted; nothing else in the repo is touched."
    )
    return head + "\n" + format_table(rows) + "\n" + deleted
