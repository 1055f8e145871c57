"""hf_spam.demo.app: the gradient x input explanation (against finite differences of the score), the
page's examples, batch files, errors before any server starts, and the app
itself in headless Chromium (skipped, with the reason, when Debian's chromium is absent)."""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest
import torch
from helpers import random_model, trained_model

from hf_spam.cli import main as cli_main
from hf_spam.demo.app import (
    FIXED_EXAMPLES,
    DemoArguments,
    classify_file,
    explain,
    launch,
    load_examples,
    prepare_app,
)
from hf_spam.errors import DataError
from hf_spam.inference.load import InferenceArguments, classify, load_classifier

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

SPAM = "WIN a free prize call now claim cash"
HAM = "see you at home later mum thanks"


@pytest.fixture(scope="module")
def model_dir(spam_csv, tmp_path_factory) -> Path:
    return trained_model(tmp_path_factory, spam_csv)


@pytest.fixture(scope="module")
def classifier(model_dir):
    return load_classifier(model_dir, device="cpu")


@pytest.fixture(scope="module")
def random_classifier(tmp_path_factory, tiktoken_available):
    return load_classifier(random_model(tmp_path_factory.mktemp("random"), seed=3), device="cpu")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------------------------
# Explanation
# --------------------------------------------------------------------------------------------


def test_attributions_are_directional_derivatives_of_the_log_odds(random_classifier):
    """Gradient x input of token i == d/da log(p_spam / p_ham) with token i's embedding scaled by
    a, at a = 1: checked by central finite differences in float64 through `inputs_embeds`."""
    text = "URGENT! You have won a prize, call now"
    explanation = explain(random_classifier, text)
    model = random_classifier.model
    ids = random_classifier.tokenizer(text, return_tensors="pt")["input_ids"]
    double = type(model)(model.config).double().eval()
    double.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    with torch.no_grad():
        embeds = double.get_input_embeddings()(ids)

        def log_odds(scaled: torch.Tensor) -> float:
            probs = torch.softmax(double(inputs_embeds=scaled).logits[0], -1)
            return math.log(probs[1] / probs[0])  # id 1 is spam

        step = 1e-4
        expected = []
        for i in range(ids.shape[1]):
            up, down = embeds.clone(), embeds.clone()
            up[0, i] *= 1 + step
            down[0, i] *= 1 - step
            expected.append((log_odds(up) - log_odds(down)) / (2 * step))
        assert explanation.log_odds == pytest.approx(log_odds(embeds), abs=1e-4)
    assert explanation.target == "spam"
    assert explanation.attributions == pytest.approx(expected, rel=1e-3, abs=1e-4)


def test_log_odds_and_probabilities_match_the_pipeline(classifier):
    for text in (SPAM, HAM):
        (prediction,) = classify(classifier, [text])
        explanation = explain(classifier, text)
        p_spam, p_ham = prediction.scores["spam"], prediction.scores["ham"]
        assert explanation.log_odds == pytest.approx(math.log(p_spam / p_ham), abs=1e-4)
        assert explanation.scores == pytest.approx(prediction.scores, abs=1e-6)


def test_segments_cover_the_text_and_are_scaled(random_classifier):
    text = "Café 😀 WIN £900\nnow!!  ok"
    explanation = explain(random_classifier, text)
    assert "".join(piece for piece, _ in explanation.segments) == text
    values = [value for _, value in explanation.segments if value is not None]
    assert max(abs(v) for v in values) == pytest.approx(1.0)
    # The emoji's two byte-level tokens share one piece: fewer pieces than tokens.
    assert len(values) == len(explanation.attributions) - 1
    ascii_text = "WIN a free prize, call now"
    ids = random_classifier.tokenizer(ascii_text)["input_ids"]
    pieces = [piece for piece, _ in explain(random_classifier, ascii_text).segments]
    assert pieces == [random_classifier.tokenizer.decode([i]) for i in ids]


def test_truncated_text_stays_visible_without_a_value(random_classifier):
    text = " ".join(["word"] * 100)  # 100 tokens, context 64
    segments = explain(random_classifier, text).segments
    assert "".join(piece for piece, _ in segments) == text
    assert segments[-1][1] is None and len(segments) == 65


# --------------------------------------------------------------------------------------------
# Examples, card scores, batch files
# --------------------------------------------------------------------------------------------


def test_examples(tmp_path):
    assert load_examples(None) == list(FIXED_EXAMPLES)
    assert load_examples(tmp_path / "absent.json") == list(FIXED_EXAMPLES)
    path = tmp_path / "examples.json"
    path.write_text(json.dumps([{"text": "free cash", "label": "spam"}, "see you"]))
    assert load_examples(path) == ["free cash", "see you"]
    assert load_examples(path, limit=1) == ["free cash"]
    path.write_text("[1, 2")
    with pytest.raises(DataError, match="examples.json: examples are not a JSON list"):
        load_examples(path)
    path.write_text('[{"body": "x"}]')
    with pytest.raises(DataError, match="examples.json, item 1: expected a text"):
        load_examples(path)


def test_classify_file_writes_the_table_it_shows(classifier, tmp_path):
    inbox = tmp_path / "inbox.csv"
    inbox.write_text(f"id,body\n1,{SPAM}\n2,{HAM}\n")
    output = classify_file(classifier, inbox, "body", tmp_path)
    assert output == tmp_path / "inbox-predictions.csv"
    lines = output.read_text().splitlines()
    assert lines[0] == "text,label,score,score_ham,score_spam"
    expected = [
        max(out, key=lambda o: o["score"])["label"] for out in classifier([SPAM, HAM], top_k=None)
    ]
    assert [line.split(",")[1] for line in lines[1:]] == expected == ["spam", "ham"]
    with pytest.raises(DataError, match="inbox.csv: no column 'text'"):
        classify_file(classifier, inbox, "text", tmp_path)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(DataError, match="empty.txt: no texts"):
        classify_file(classifier, empty, "text", tmp_path)


# --------------------------------------------------------------------------------------------
# Command line: errors come before any server
# --------------------------------------------------------------------------------------------


def test_errors_before_any_server_starts(tmp_path, capsys, monkeypatch, model_dir):
    import gradio

    def no_server(*args, **kwargs):
        raise AssertionError("a server started")

    monkeypatch.setattr(gradio.Blocks, "launch", no_server)
    assert cli_main(["demo", "--model", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "not a complete model folder: missing config.json" in err
    assert cli_main(["demo", "--model", str(model_dir), "--port", "70000"]) == 2
    assert "--port 70000: expected a port number" in capsys.readouterr().err
    missing = tmp_path / "nope.json"
    assert cli_main(["demo", "--model", str(model_dir), "--examples", str(missing)]) == 1
    assert f"--examples {missing}: file not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("host", "says"),
    [("no-such-host.invalid", "unknown host name"), ("192.0.2.1", "cannot listen on this address")],
)  # 192.0.2.1: TEST-NET-1, documentation only, never an address of this machine
def test_a_host_that_cannot_be_listened_on_is_named_not_the_port(
    host, says, model_dir, capsys, monkeypatch
):
    """Gradio reports both as 'Cannot find empty port'; refused before the model loads."""
    monkeypatch.setattr("hf_spam.demo.app.load_classifier", lambda *a, **k: pytest.fail("loaded"))
    assert cli_main(["demo", "--model", str(model_dir), "--host", host, "--port", "7861"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --host {host}: {says} (") and err.count("\n") == 1
    assert err.endswith("); pass a name or address of this machine, e.g. 127.0.0.1 or 0.0.0.0\n")
    assert "port" not in err


def test_host_and_port_defaults(monkeypatch):
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    args = DemoArguments(model="m")
    assert (args.host, args.port, args.share) == ("127.0.0.1", 7860, False)
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "8080")
    assert (DemoArguments(model="m").host, DemoArguments(model="m").port) == ("0.0.0.0", 8080)


def test_busy_port_is_one_clear_error(model_dir, capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert cli_main(["demo", "--model", str(model_dir), "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# The app in a real browser
# --------------------------------------------------------------------------------------------

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1000",
)


def chromium_driver():
    """Selenium driving Debian's chromium + chromedriver; never a downloaded browser."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.skip("no system Chromium (apt-get install chromium chromium-driver; .ci/run does)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-')}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)


def test_app_in_headless_chromium(model_dir, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chromium_driver()
    args = DemoArguments(model=str(model_dir), host="127.0.0.1", port=free_port())
    app = prepare_app(args, InferenceArguments(device="cpu"))
    launch(app, args, block=False)
    try:
        driver.set_page_load_timeout(30)
        driver.get(f"http://{args.host}:{args.port}/")
        wait = WebDriverWait(driver, 20)
        box = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#message textarea"))
        for text, expected in ((SPAM, "spam"), (HAM, "ham")):
            box.clear()
            box.send_keys(text)
            driver.find_element(By.ID, "classify").click()
            wait.until(lambda d, t=text: t.split()[-1] in d.find_element(By.ID, "why").text)
            label = driver.find_element(By.CSS_SELECTOR, "#label h2").text
            assert label == expected
            tokens = driver.find_elements(By.CSS_SELECTOR, "#why .textfield .token")
            assert [t.text.strip() for t in tokens] == text.split()
        assert "log-odds" in driver.find_element(By.ID, "note").text
        screenshot = tmp_path / "demo-classify.png"
        driver.save_screenshot(str(screenshot))
        print(f"screenshot: {screenshot}")

        driver.find_element(By.XPATH, "//button[@role='tab'][contains(., 'Batch')]").click()
        inbox = tmp_path / "inbox.txt"
        inbox.write_text(f"{SPAM}\n{HAM}\n")
        upload = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#upload input[type=file]"))
        upload.send_keys(str(inbox))

        def table_rows(d):
            rows = d.find_elements(By.CSS_SELECTOR, "#batch-table [role=row]")
            cells = [r.text.split("\n") for r in rows if r.get_attribute("aria-rowindex") != "1"]
            return cells if len(cells) == 2 else None

        rows = wait.until(table_rows)
        assert [row[:2] for row in rows] == [[SPAM, "spam"], [HAM, "ham"]]
        assert wait.until(lambda d: "inbox-predictions" in d.find_element(By.ID, "batch-csv").text)
        batch_shot = tmp_path / "demo-batch.png"
        driver.save_screenshot(str(batch_shot))
        print(f"screenshot: {batch_shot}")
    finally:
        driver.quit()
        app.close()
    assert screenshot.stat().st_size > 10_000
