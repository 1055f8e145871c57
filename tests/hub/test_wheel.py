"""The model-card template in a built wheel: `pip wheel` (offline, no build isolation) of a copy of
the checkout ships hf_spam/hub/model_card.md as a real file holding the top-level model_card.md,
and a fresh interpreter that imports hf_spam from the unpacked wheel renders a card from it."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

from helpers import ROOT
from huggingface_hub import ModelCard

from hf_spam.hub.rendering import render_model_card

TEMPLATE = ROOT / "model_card.md"
CONTEXT = {"repo_id": "alice/tiny-spam", "labels": ["ham", "spam"]}


def _source_tree(target: Path) -> Path:
    """What `pip wheel` reads, copied (links kept as links) so the build writes nothing into the
    checkout and no stale build/ folder of it can reach the wheel."""
    target.mkdir()
    for name in ("pyproject.toml", "README.md", "model_card.md"):
        shutil.copy2(ROOT / name, target / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "hf_spam", target / "hf_spam", symlinks=True, ignore=ignore)
    return target


def _build_wheel(source: Path, out: Path) -> Path:
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    command = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps"]
    command += ["--no-build-isolation", "-w", str(out)]
    built = subprocess.run(command, env=env, capture_output=True, text=True, cwd=source)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    [wheel] = out.glob("hf_spam-*.whl")
    return wheel


def _headings_outside_conditions(template: str) -> list[str]:
    """The template's headings that every card has: no Jinja in them, not inside `{% if %}`."""
    headings, depth = [], 0
    for line in template.splitlines():
        if depth == 0 and line.startswith("#") and "{" not in line:
            headings.append(line)
        depth += line.count("{% if") - line.count("{% endif")
    return headings


def test_wheel_ships_the_template_and_renders_a_card_from_it(tmp_path):
    wheel = _build_wheel(_source_tree(tmp_path / "source"), tmp_path / "wheels")
    with zipfile.ZipFile(wheel) as archive:
        info = archive.getinfo("hf_spam/hub/model_card.md")
        assert not stat.S_ISLNK(info.external_attr >> 16)
        assert archive.read(info) == TEMPLATE.read_bytes()
        archive.extractall(tmp_path / "site")

    site = tmp_path / "site"
    script = f"""
import json, sys
sys.path.insert(0, {str(site)!r})
import hf_spam
from hf_spam.hub.rendering import DEFAULT_MODEL_CARD_TEMPLATE, render_model_card
card = render_model_card(None, {str(tmp_path / "README.md")!r}, context=json.loads(sys.argv[1]))
print(json.dumps([hf_spam.__file__, str(DEFAULT_MODEL_CARD_TEMPLATE), str(card)]))
"""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    ran = subprocess.run(
        [sys.executable, "-c", script, json.dumps(CONTEXT)],
        cwd=tmp_path,  # not the checkout: hf_spam can come only from the unpacked wheel
        env=env,
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    package, template, card = (Path(p) for p in json.loads(ran.stdout.splitlines()[-1]))
    assert package.is_relative_to(site) and template.is_relative_to(site)
    assert not template.is_symlink()

    rendered = card.read_text(encoding="utf-8")
    assert ModelCard(rendered).data.license  # the front matter parses as the Hub's
    assert 'model="alice/tiny-spam"' in rendered and "\n# tiny-spam\n" in rendered
    headings = _headings_outside_conditions(TEMPLATE.read_text(encoding="utf-8"))
    assert {"## Usage", "## Limitations"} <= set(headings)
    found = [line for line in rendered.splitlines() if line in headings]
    assert found == headings
    # The same card as the checkout's top-level template renders.
    here = render_model_card(TEMPLATE, tmp_path / "here.md", context=CONTEXT)
    assert rendered == here.read_text(encoding="utf-8")
