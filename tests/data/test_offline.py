"""Without network, only GPT-2's weights are missing: `hf-spam train` says so in one line and
what to pass instead; every other fetch (the IMDb archive, a Hub dataset, a Hub model) fails
the same way, naming what could not be fetched. Both kinds of "no network" are tried: the
Hugging Face offline switches, and a network that is down (every connection refused)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
from helpers import DEAD_PROXY, error_lines, no_network_env, run_hf_spam, write_spam_fixture

from hf_spam.cli import describe, main
from hf_spam.data import IMDB_URL

WEIGHTS = (
    "error: could not fetch the GPT-2 weights 'openai-community/gpt2': it is not a local path "
    "and the Hugging Face Hub cannot be reached (offline, and not in the local cache); pass a "
    "local path to GPT-2 weights (train: --model_name_or_path FOLDER, convert: --source "
    "FOLDER), or train from random weights with --init random"
)


@pytest.mark.parametrize("switches", [True, False], ids=["offline-switches", "network-down"])
def test_train_without_weights_is_one_line(switches: bool, tmp_path: Path) -> None:
    """A fresh machine: the default data (bundled) and tokenizer need nothing; the weights do."""
    out = tmp_path / "run"
    result = run_hf_spam(
        ["train", "--output_dir", out], no_network_env(tmp_path, switches), tmp_path
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert error_lines(result.stderr) == [WEIGHTS]
    assert result.stderr.rstrip().endswith(WEIGHTS)
    assert not out.exists()


def _one_error_line(capsys: pytest.CaptureFixture) -> str:
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1, lines
    return lines[0]


def test_imdb_without_network_is_one_line(tmp_path: Path, capsys) -> None:
    argv = ["prepare-data", "--dataset", "imdb", "--data_cache_dir", tmp_path / "cache"]
    assert main([*map(str, argv), "--save_to_disk", str(tmp_path / "out")]) == 1
    assert _one_error_line(capsys) == (
        f"error: could not fetch the IMDb reviews from {IMDB_URL}: the network cannot be reached "
        "(offline), and it is not in the datasets cache; use --dataset stanfordnlp/imdb from the "
        "Hub, or convert the reviews to a CSV and pass --train_file"
    )
    assert not (tmp_path / "out").exists()


def test_hub_dataset_without_network_is_one_line(tmp_path: Path, capsys) -> None:
    argv = ["prepare-data", "--dataset", "nobody/no-such-data", "--data_cache_dir", tmp_path / "c"]
    assert main([*map(str, argv), "--save_to_disk", str(tmp_path / "out")]) == 1
    assert _one_error_line(capsys) == (
        "error: could not fetch the Hub dataset 'nobody/no-such-data': the network cannot be "
        "reached (offline), and it is not in the datasets cache; pass a local path (--dataset "
        "FILE, or --train_file FILE)"
    )


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_hub_model_without_network_is_one_line(command: str, tmp_path: Path, capsys) -> None:
    data = write_spam_fixture(tmp_path / "spam.csv", rows=8)
    argv = {
        "predict": ["predict", "--model", "nobody/no-such-model", "WIN a prize"],
        "evaluate": ["evaluate", "--model", "nobody/no-such-model", "--dataset", str(data),
                     "--eval_split", "all", "--output_dir", str(tmp_path / "eval")],
    }[command]  # fmt: skip
    assert main(argv) == 1
    line = _one_error_line(capsys)
    assert line.startswith("error: 'nobody/no-such-model' is neither a local model folder nor ")
    assert "Hugging Face Hub (offline or unknown); pass a local path" in line


def test_a_network_failure_from_any_library_names_the_url() -> None:
    """The boundary's safety net: an HTTP client's own connection error (here requests', to a
    closed loopback port) becomes one line naming the URL, not the client's retry report."""
    with pytest.raises(requests.ConnectionError) as raised:
        requests.get(f"{DEAD_PROXY}/gpt-2/vocab.bpe", timeout=5)
    assert describe(raised.value) == (
        1,
        f"could not fetch {DEAD_PROXY}/gpt-2/vocab.bpe: the network cannot be reached (offline), "
        "and it is not in the local cache; pass a local path",
    )
    assert not re.search(r"HTTPConnectionPool|Max retries", describe(raised.value)[1])
