"""`hf-spam serve` as a real process on loopback (huggingface_hub's own InferenceClient against
it, the graceful stop on SIGTERM), and its one-line errors before anything listens."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
import httpx  # noqa: E402
from helpers import ROOT, random_model  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from transformers import pipeline  # noqa: E402

from hf_spam.cli import main  # noqa: E402

SPAM = "WINNER!! You have been selected to receive a £900 prize reward. Call 09061701461."


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return random_model(tmp_path_factory.mktemp("serve-command") / "tiny")


def command(*flags) -> list[str]:
    return [sys.executable, "-m", "hf_spam.cli", "serve", *map(str, flags)]


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}


def start(folder: Path, log: Path, *flags) -> tuple[subprocess.Popen, str]:
    """The server on a free loopback port, and its URL once it says it is serving."""
    process = subprocess.Popen(
        command("--model", folder, "--port", 0, *flags),
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )
    for line in process.stdout:
        if line.startswith("Serving "):
            return process, line.split(" at ")[1].split()[0]
    process.wait(timeout=30)
    raise AssertionError(f"the server did not start: {log.read_text()[-2000:]}")


def queued(url: str) -> float:
    exposition = httpx.get(f"{url}/metrics").text
    for family in text_string_to_metric_families(exposition):
        if family.name == "hf_spam_queue_texts":
            return family.samples[0].value
    raise AssertionError("no hf_spam_queue_texts in /metrics")


def test_a_real_server_answers_inference_client_then_stops_gracefully_on_sigterm(
    folder, tmp_path, monkeypatch
):
    """One process for both halves (its start-up is most of the test's time): huggingface_hub's
    InferenceClient gets the pipeline's labels and scores; then, with eight requests waiting in
    a gathering batch, SIGTERM closes the listening socket, the eight are answered, exit 0."""
    from huggingface_hub import InferenceClient, constants

    reference = pipeline("text-classification", model=str(folder), device="cpu")
    expected = reference(SPAM, top_k=None)
    texts = [f"text {i} for the batch" for i in range(8)]
    process, url = start(folder, tmp_path / "server.log", "--max_wait_ms", 2000)
    host, port = url.removeprefix("http://").rsplit(":", 1)
    stopped = False
    try:
        # The tests run offline, and huggingface_hub then refuses every URL, loopback included.
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        client = InferenceClient(url)
        answer = client.text_classification(SPAM)
        best = client.text_classification(SPAM, top_k=1)
        monkeypatch.undo()
        with ThreadPoolExecutor(len(texts)) as pool:
            futures = [
                pool.submit(httpx.post, f"{url}/predict", json={"inputs": text}, timeout=30)
                for text in texts
            ]
            deadline = time.monotonic() + 20
            while queued(url) < len(texts):  # all eight wait in the batch that is gathering
                assert time.monotonic() < deadline, "the requests never reached the queue"
                time.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            stopped = True
            time.sleep(0.3)
            with pytest.raises(OSError):  # no longer accepting, while the batch still waits
                socket.create_connection((host, int(port)), timeout=2).close()
            answers = [future.result() for future in futures]
    finally:
        if not stopped:
            process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=30)
    assert [item.label for item in answer] == [item["label"] for item in expected]
    for got, want in zip(answer, expected, strict=True):
        assert got.score == pytest.approx(want["score"], abs=1e-5)
    assert [item.label for item in best] == [expected[0]["label"]]
    assert status == 0
    assert "Stopped (SIGTERM)" in process.stdout.read()
    for text, response in zip(texts, answers, strict=True):
        assert response.status_code == 200
        want = reference(text, top_k=None)
        assert [item["label"] for item in response.json()] == [item["label"] for item in want]


def test_bad_flags_a_busy_port_and_a_missing_folder_are_one_line(folder, tmp_path, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cases = [
            (["--model", folder, "--max_texts", 10, "--max_queue", 5], 2,
             "error: --max_texts 10 is more than --max_queue 5: such a request could never be "
             "queued"),
            (["--model", folder, "--port", port], 2,
             f"error: cannot listen on 127.0.0.1:{port} (Address already in use); pass another "
             "--port or --host"),
            (["--model", folder, "--host", "no-such-host.invalid"], 2,
             "error: --host no-such-host.invalid: unknown host name"),
            (["--model", tmp_path / "nothing", "--port", 0], 1,
             f"error: {tmp_path / 'nothing'}: no such model folder"),
        ]  # fmt: skip
        for flags, status, line in cases:
            assert main(["serve", *map(str, flags)]) == status
            assert capsys.readouterr().err.strip().startswith(line)
