"""What a push may upload: files inside the model folder, hf_spam's own code, an `auto_map` that
names hf_spam's classes.

A repo's code runs on every machine that loads it with `trust_remote_code=True`, so a push must
not upload what the folder merely points at: a weights file that is a link to a file elsewhere
(its bytes are someone else's), an `auto_map` into another repo (the model would run that repo's
code, not the one pushed), a `modeling.py` edited by hand (it would run in place of hf_spam's).
Each is refused with one line naming the file or key; `replace_code` uploads the installed
package's code files in place of differing copies.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import HubError
from ..model import configuration, modeling

#: The code files a saved folder carries (`auto_map`'s modules), and the package's own copy.
PACKAGE_CODE = {
    "configuration.py": Path(configuration.__file__),
    "modeling.py": Path(modeling.__file__),
}
_MODULES = {"configuration": configuration, "modeling": modeling}


def code_files(config: Mapping[str, Any], config_path: Path) -> list[str]:
    """The Python files `auto_map` points at (what `trust_remote_code=True` downloads), each
    reference checked to name one of hf_spam's classes in its own code file."""
    auto_map = config.get("auto_map")
    if not auto_map or not isinstance(auto_map, Mapping):
        raise HubError(
            f"{config_path} has no auto_map, so the Hub could not load the model without hf_spam; "
            "save it again with hf_spam imported (model.save_pretrained(folder))"
        )
    files = set()
    for key, value in auto_map.items():
        for reference in value if isinstance(value, list) else [value]:
            if reference is None:  # (slow, fast) tokenizer pairs leave one empty
                continue
            module, _, name = str(reference).rpartition(".")
            if (
                "--" in module
                or module not in _MODULES
                or not isinstance(getattr(_MODULES[module], name, None), type)
            ):
                raise HubError(
                    f"{config_path}: auto_map {key} is {reference!r}, not one of hf_spam's classes "
                    "(configuration.GPTConfig, modeling.GPT...); a push uploads hf_spam's own code "
                    "only. Save the model again with hf_spam (model.save_pretrained(folder))"
                )
            files.add(f"{module}.py")
    return sorted(files)


def check_inside(model_dir: Path, names: list[str]) -> None:
    """Every file to upload lies inside `model_dir`: a link out would upload another file's
    bytes (and whatever it points at later)."""
    root = model_dir.resolve()
    for name in names:
        path = model_dir / name
        target = path.resolve()
        if not target.is_relative_to(root):
            raise HubError(
                f"{path} is a link to {target}, outside the folder; a push uploads only files "
                "inside it (copy the file in instead of linking it)"
            )


def code_sources(model_dir: Path, code: list[str], replace_code: bool = False) -> dict[str, Path]:
    """Where each code file is uploaded from: the folder's copy, which must be hf_spam's own
    (byte for byte), or with `replace_code` the installed package's."""
    sources = {}
    for name in code:
        own, path = PACKAGE_CODE[name], model_dir / name
        if not replace_code and path.read_bytes() != own.read_bytes():
            raise HubError(
                f"{path} differs from hf_spam's own {own.name} ({own}); it would run on every "
                "machine that loads the repo. Pass --replace_code to upload the installed "
                "hf_spam's code instead, or save the model again with it"
            )
        sources[name] = own if replace_code else path
    return sources


__all__ = ["PACKAGE_CODE", "check_inside", "code_files", "code_sources"]
