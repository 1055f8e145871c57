"""`hf-spam serve`: an HTTP server for a trained classifier (FastAPI on uvicorn, the [serve] extra).

    hf-spam serve --model runs/spam                       # http://127.0.0.1:8080
    hf-spam serve --model alice/gpt2-sms-spam --host 0.0.0.0 --port 9000 --max_batch_size 32
    curl -s localhost:8080/predict -H 'Content-Type: application/json' \
        -d '{"inputs": "WIN a free prize, call now"}'

It speaks Text Embeddings Inference's POST /predict and the Hugging Face Inference API's text
classification at POST / (so `InferenceClient(url).text_classification(text)` works), with
GET /health, /info and /metrics. Concurrent requests are batched (--max_batch_size,
--max_wait_ms) through the bulk path of `hf-spam predict`. SIGTERM or Ctrl-C: the server stops
accepting, answers what is in flight, and exits 0. See docs/serving.md.
"""

from __future__ import annotations

from ..errors import UsageError
from .arguments import parser_for


def _description() -> str:
    """The summary line and the paragraph on the protocol, for --help."""
    paragraphs = __doc__.split("\n\n")
    return f"{paragraphs[0]} {' '.join(paragraphs[2].split())}"


def run(argv: list[str]) -> int:
    from ..serve.arguments import BatchingArguments, ServeArguments

    parser = parser_for("serve", (ServeArguments, BatchingArguments), _description())
    args, limits = parser.parse(argv)
    try:
        from ..serve.app import create_app
    except ImportError as err:
        raise UsageError(
            f"hf-spam serve needs the [serve] extra: pip install 'hf_spam[serve]' ({err})"
        ) from None
    from ..serve.served import load_served_model
    from ..serve.server import bind, run, url_of

    sock = bind(args.host, args.port)  # before the model loads: a busy port fails at once
    with sock:
        served = load_served_model(
            args.model,
            device=args.device,
            trust_remote_code=args.trust_remote_code,
            num_threads=args.num_threads,
        )
        app = create_app(served, limits)
        print(
            f"Serving {args.model} at {url_of(sock)} (POST /predict, POST /, GET /health, "
            "/info, /metrics); SIGTERM or Ctrl-C stops it",
            flush=True,
        )
        stopped_by = run(
            app,
            sock,
            graceful_timeout=args.graceful_timeout,
            log_level=args.log_level,
            access_log=args.access_log,
        )
    print(
        f"Stopped ({', '.join(stopped_by) or 'shut down'}) after answering the requests in flight"
    )
    return 0
