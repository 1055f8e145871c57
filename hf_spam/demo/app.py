"""A Gradio app for a trained classifier: paste a message, see the label and why.

    hf-spam demo --model runs/spam              # or: python scripts/demo.py --model runs/spam
    hf-spam demo --model alice/gpt2-sms-spam --host 0.0.0.0 --port 8080 --share

The model loads through `hf_spam.inference.load.load_classifier`, the code `predict` uses, before any
server starts, so a bad folder or repo id is one line on stderr rather than a broken page. Tabs:

* **Classify**: the label with every class's probability as bars (at the model's operating
  point: config.json's temperature and decision threshold, `inference.decision`), and each token coloured by
  *gradient x input* of the spam log-odds at the last token (see `explain`), with the examples of
  the model folder's `examples.json` (texts of its test split) or a few fixed SMS-style texts;
  beside it the model card's test accuracy and F1 and its `confusion-matrix.png`.
* **Batch**: a CSV/TSV/JSON-lines/TXT file in (read by `inference.read_texts`), a table of
  predictions and the same predictions as a CSV to download (`inference.write_predictions`).

Gradio is an optional extra (`pip install -e ".[demo]"`); it is imported only once the model
has loaded. Analytics are off unless GRADIO_ANALYTICS_ENABLED says otherwise.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import Pipeline

from ..constants import EXAMPLES_FILE
from ..errors import DataError, HfSpamError, UsageError
from ..files import csv_reader
from ..hub.summary import ModelSummary, read_model_summary, target_label
from ..inference.context import context_prefix
from ..inference.decision import OperatingPoint
from ..inference.load import InferenceArguments, classify, label_names, load_classifier, read_texts
from ..inference.load import write_predictions as _write_predictions

__all__ = [
    "DemoArguments",
    "Explanation",
    "ModelSummary",
    "build_app",
    "explain",
    "load_examples",
    "read_model_summary",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
FIXED_EXAMPLES = (
    "WINNER!! You have been selected to receive a £900 prize reward. Call 09061701461 to claim.",
    "URGENT! Your mobile number has won £2,000. Txt CLAIM to 81010 now. T&Cs apply.",
    "Free entry in 2 a wkly comp to win FA Cup final tkts. Text FA to 87121 to receive entry.",
    "Hey, are we still on for dinner tonight? I'll be there around 7.",
    "Sorry, I'll call you later. In a meeting right now.",
    "Ok lar... Just got home, will text you tomorrow.",
)
EXPLANATION_NOTE = (
    "Each token is coloured by **gradient × input** of the {target} log-odds "
    "(log p({target}) − log p(other classes)) read at the last token: red pushes towards "
    "{target}, purple away from it; the strongest token is full colour."
)


def _env_default(name: str, fallback: Any) -> Any:
    """Gradio's own environment variables (set on Spaces) win over our defaults."""
    value = os.environ.get(name)
    return type(fallback)(value) if value else fallback


@dataclass
class DemoArguments:
    """The model, and how the app serves it.

    Flags of `hf-spam demo` (parsed by `HfArgumentParser`, with `InferenceArguments`)."""

    _argument_group_name = "demo"

    model: str = field(metadata={"help": "Model folder (from `hf-spam train`) or Hub repo id."})
    host: str = field(
        default_factory=lambda: _env_default("GRADIO_SERVER_NAME", DEFAULT_HOST),
        metadata={
            "help": "Address to listen on (0.0.0.0: every interface); GRADIO_SERVER_NAME sets the default."
        },
    )
    port: int = field(
        default_factory=lambda: _env_default("GRADIO_SERVER_PORT", DEFAULT_PORT),
        metadata={"help": "Port to listen on; GRADIO_SERVER_PORT sets the default."},
    )
    share: bool = field(
        default=False, metadata={"help": "Also open a public *.gradio.live link (needs internet)."}
    )
    examples: str | None = field(
        default=None,
        metadata={
            "help": f"JSON list of texts or {{text, label}} objects to offer as examples "
            f"(default: the model folder's {EXAMPLES_FILE}, else a few fixed SMS-style texts)."
        },
    )
    title: str | None = field(
        default=None, metadata={"help": "Page title (default: the model's name)."}
    )


# --------------------------------------------------------------------------------------------
# Explanation: gradient x input of the spam log-odds
# --------------------------------------------------------------------------------------------


@dataclass
class Explanation:
    """Per-token attributions for one text; `segments` cover the whole text, in order."""

    target: str  # the class whose log-odds is explained
    log_odds: float  # log p(target) - log sum_{other} p(other)
    scores: dict[str, float]  # every class's probability, from the same forward pass
    #: (text piece, attribution scaled to [-1, 1]); None for text the model did not read
    segments: list[tuple[str, float | None]]
    attributions: list[float]  # raw gradient x input, one per token
    seconds: float
    #: The predicted class at the model's operating point (its temperature and threshold)
    label: str = ""


def _segments(
    text: str, offsets: list[tuple[int, int]], values: list[float]
) -> list[tuple[str, float | None]]:
    """Cut `text` at the token offsets; each piece carries its token's value.

    Byte-level BPE splits a multi-byte character over tokens whose offsets overlap: their values
    are added to the piece that holds the character. Text the tokenizer dropped (truncated away)
    is kept, with no value, so the pieces always join back to `text`.
    """
    pieces: list[list[Any]] = []
    cursor = 0
    for (start, end), value in zip(offsets, values, strict=True):
        start = max(start, cursor)
        if end <= start and pieces:
            pieces[-1][1] += value
            continue
        if start > cursor:
            pieces.append([text[cursor:start], None])
        pieces.append([text[start:end], value])
        cursor = max(cursor, end)
    if cursor < len(text):
        pieces.append([text[cursor:], None])
    scale = max((abs(v) for _, v in pieces if v is not None), default=0.0) or 1.0
    return [(piece, None if v is None else v / scale) for piece, v in pieces]


def explain(classifier: Pipeline, text: str) -> Explanation:
    """Gradient x input attribution of the target class's log-odds, one value per token.

    The score is `logit[target] - logsumexp(other logits)` at the last token (for two classes,
    the logit margin `spam - ham`). A token's value is the gradient of that score with respect
    to its token embedding, dotted with the embedding: the score's first-order change when the
    token is faded out. One forward and one backward pass, so an SMS takes well under a second
    on a CPU where occlusion would need a forward pass per token. The model reads the tokens the
    pipeline reads (same tokenizer, truncation and forward path): a hook on the token embedding
    makes its output the leaf the gradient is taken for.
    """
    start = time.perf_counter()
    model, tokenizer = classifier.model, classifier.tokenizer
    labels = label_names(model.config)
    target = target_label(labels)
    read = context_prefix(tokenizer, text)  # a prefix with the same tokens: offsets still fit
    encoded = tokenizer(read, truncation=True, return_offsets_mapping=True, return_tensors="pt")
    offsets = [tuple(pair) for pair in encoded.pop("offset_mapping")[0].tolist()]
    if not offsets:
        raise DataError("the message is empty: type a text to classify")
    embedded: list[torch.Tensor] = []

    def make_leaf(module: torch.nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor:
        embedded.append(output.detach().requires_grad_(True))
        return embedded[-1]

    hook = model.get_input_embeddings().register_forward_hook(make_leaf)
    try:
        with torch.enable_grad():
            logits = model(input_ids=encoded["input_ids"].to(model.device)).logits.float()[0]
            index = labels.index(target)
            others = torch.cat([logits[:index], logits[index + 1 :]])
            log_odds = logits[index] - torch.logsumexp(others, dim=0)
            (gradient,) = torch.autograd.grad(log_odds, embedded[0])
    finally:
        hook.remove()
    attributions = (gradient * embedded[0]).sum(-1)[0].detach().float().tolist()
    point = OperatingPoint.from_config(model.config)
    probabilities = point.probabilities(logits.detach()).tolist()
    return Explanation(
        target=target,
        log_odds=log_odds.item(),
        scores=dict(zip(labels, probabilities, strict=True)),
        segments=_segments(text, offsets, attributions),
        attributions=attributions,
        seconds=time.perf_counter() - start,
        label=labels[point.choose(probabilities)],
    )


# --------------------------------------------------------------------------------------------
# What the page shows besides predictions: examples, card metrics, confusion matrix
# --------------------------------------------------------------------------------------------


def load_examples(path: str | os.PathLike | None, limit: int = 8) -> list[str]:
    """Example texts from a JSON list (strings or `{"text": ...}` objects), else fixed ones."""
    if path is None or not Path(path).is_file():
        return list(FIXED_EXAMPLES)
    try:
        records = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: examples are not a JSON list ({err})") from None
    if not isinstance(records, list):
        raise DataError(f"{path}: examples must be a JSON list, not {type(records).__name__}")
    texts = []
    for number, record in enumerate(records, start=1):
        text = record.get("text") if isinstance(record, dict) else record
        if not isinstance(text, str):
            raise DataError(f"{path}, item {number}: expected a text or an object with 'text'")
        texts.append(text)
    return texts[:limit] or list(FIXED_EXAMPLES)


# --------------------------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------------------------


def classify_file(
    classifier: Pipeline, path: str | os.PathLike, text_column: str, output_dir: str | os.PathLike
) -> Path:
    """Predictions for every text of an uploaded file, written as `<name>-predictions.csv`."""
    texts = read_texts(path, text_column=text_column or "text")
    if not texts:
        raise DataError(f"{Path(path).name}: no texts in the file")
    predictions = classify(classifier, texts, progress=False)
    output = Path(output_dir) / f"{Path(path).stem}-predictions.csv"
    return _write_predictions(predictions, output)


def _read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """The downloadable CSV as header and rows (scores to 4 decimals): the table shows what is
    downloaded."""
    with open(path, encoding="utf-8", newline="") as handle:
        header, *rows = list(csv_reader(handle))
    scores = [i for i, name in enumerate(header) if name.startswith("score")]
    for row in rows:
        for i in scores:
            row[i] = f"{float(row[i]):.4f}"
    return header, rows


def build_app(
    classifier: Pipeline,
    *,
    examples: list[str] | None = None,
    summary: ModelSummary | None = None,
    title: str = "hf_spam demo",
) -> Any:
    """The `gradio.Blocks` app: a Classify tab (label, why, card scores) and a Batch tab."""
    import gradio as gr

    labels = label_names(classifier.model.config)
    target = target_label(labels)
    point = OperatingPoint.from_config(classifier.model.config)
    summary = summary or ModelSummary()
    downloads = Path(tempfile.mkdtemp(prefix="hf_spam-demo-"))

    def predict(text: str) -> tuple[dict[str, float], list[tuple[str, float | None]], str]:
        if not (text or "").strip():
            raise gr.Error("Type a message to classify.")
        explanation = explain(classifier, text)  # its forward pass gives the probabilities too
        note = (
            f"Predicted **{explanation.label}** ({point.describe()}). "
            f"{target} log-odds {explanation.log_odds:+.2f} over {len(explanation.attributions)} "
            f"tokens; explained in {explanation.seconds * 1000:.0f} ms."
        )
        return explanation.scores, explanation.segments, note

    def predict_file(path: str | None, text_column: str) -> tuple[Any, str | None]:
        if not path:
            return None, None
        try:
            output = classify_file(classifier, path, text_column, downloads)
        except HfSpamError as err:
            raise gr.Error(str(err)) from None
        header, rows = _read_table(output)
        return gr.DataFrame(value=rows, headers=header), str(output)

    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(
            f"# {title}\nA GPT classifier from *Build a Large Language Model (From Scratch)*."
        )
        with gr.Tab("Classify"):
            with gr.Row():
                with gr.Column():
                    message = gr.Textbox(label="Message", lines=4, elem_id="message")
                    button = gr.Button("Classify", variant="primary", elem_id="classify")
                    gr.Examples([[text] for text in examples or FIXED_EXAMPLES], inputs=message)
                with gr.Column():
                    label = gr.Label(
                        label="Prediction", num_top_classes=len(labels), elem_id="label"
                    )
                    why = gr.HighlightedText(
                        label=f"Why: tokens towards {target} (red) or away (purple)",
                        elem_id="why",
                        show_legend=True,
                    )
                    note = gr.Markdown(elem_id="note")
                    gr.Markdown(EXPLANATION_NOTE.format(target=target))
            with gr.Row():
                gr.Markdown(summary.markdown(), elem_id="metrics")
                if summary.confusion_matrix is not None:
                    gr.Image(
                        str(summary.confusion_matrix),
                        label="Confusion matrix (test split)",
                        height=260,
                        interactive=False,
                    )
        with gr.Tab("Batch", elem_id="batch-tab"):
            upload = gr.File(
                label="Texts: CSV/TSV (column below), JSON lines, or TXT (one text per line)",
                file_types=[".csv", ".tsv", ".jsonl", ".json", ".txt"],
                type="filepath",
                elem_id="upload",
            )
            column = gr.Textbox(value="text", label="Text column (CSV/TSV/JSON lines)")
            run_batch = gr.Button("Classify file", variant="primary")
            table = gr.DataFrame(label="Predictions", elem_id="batch-table", interactive=False)
            download = gr.File(label="Predictions as CSV", elem_id="batch-csv")
        outputs = [label, why, note]
        button.click(predict, inputs=message, outputs=outputs)
        message.submit(predict, inputs=message, outputs=outputs)
        for event in (upload.upload, run_batch.click):
            event(predict_file, inputs=[upload, column], outputs=[table, download])
    return app


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _require_gradio() -> None:
    import importlib.util

    if importlib.util.find_spec("gradio") is None:
        raise UsageError('the demo needs gradio: pip install -e ".[demo]"')


def prepare_app(args: DemoArguments, inference_args: InferenceArguments) -> Any:
    """Load the model (clear `ModelLoadError` first), read examples and scores, build the app."""
    _require_gradio()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if args.examples is not None and not Path(args.examples).is_file():
        raise DataError(f"--examples {args.examples}: file not found")
    classifier = load_classifier(args.model, **asdict(inference_args))
    summary = read_model_summary(args.model, label_names(classifier.model.config))
    default_examples = summary.folder / EXAMPLES_FILE if summary.folder else None
    return build_app(
        classifier,
        examples=load_examples(args.examples or default_examples),
        summary=summary,
        title=args.title or f"{Path(args.model).name or args.model}: spam or ham?",
    )


_HOST_HINT = "; pass a name or address of this machine, e.g. 127.0.0.1 or 0.0.0.0"


def check_host(host: str) -> None:
    """`--host` must be an address of this machine: Gradio reports a name that does not resolve,
    or an address no socket here can bind, as a busy port. Checked before the model loads."""
    try:
        family, _, _, _, address = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise UsageError(f"--host {host}: unknown host name ({reason}){_HOST_HINT}") from None
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address[0], 0, *address[2:]))  # port 0: any free one, only the address
        except OSError as err:
            raise UsageError(
                f"--host {host}: cannot listen on this address ({err.strerror}){_HOST_HINT}"
            ) from None


def launch(app: Any, args: DemoArguments, *, block: bool = True) -> Any:
    """Start the server (Gradio prints the local URL); `block=False` returns once it listens."""
    try:
        return app.launch(
            server_name=args.host,
            server_port=args.port,
            share=args.share,
            prevent_thread_lock=not block,
        )
    except OSError as err:
        raise UsageError(
            f"cannot listen on {args.host}:{args.port} ({err}); pass another --port"
        ) from None
