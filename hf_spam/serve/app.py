"""The HTTP app: TEI's and the Inference API's classification routes over the dynamic batcher.

    POST /predict   Text Embeddings Inference's request and answer (`protocol.PredictRequest`)
    POST /          the Inference API's text-classification task (`protocol.ClassificationRequest`)
    GET  /health    200 while the batcher runs, else 503
    GET  /info      the model, its labels, context, decision threshold, the limits, the version
    GET  /metrics   Prometheus' text format (`metrics.ServerMetrics`)

Every error is one JSON line, `{"error": ..., "error_type": ...}`, TEI's kinds and codes where it
has them: a body over `max_bytes` or more than `max_texts` texts is 413, malformed JSON or a
wrong field 422 naming the field, a full queue 503 with `Retry-After`, a failed batch 424.
Anything unforeseen is a 500 of the same shape, never a traceback: `_Guard` catches it.
The body is read and parsed here, not by FastAPI's body parameters, so its size is checked
before it is parsed and a validation error is one line rather than FastAPI's list.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException

from ..errors import first_line
from .arguments import BatchingArguments
from .batching import Batcher, InferenceFailed, Overloaded
from .metrics import CONTENT_TYPE_LATEST, ServerMetrics
from .protocol import ClassificationRequest, PredictRequest, ranked, validation_message
from .served import ServedModel, package_version

__all__ = ["ApiError", "create_app"]

logger = logging.getLogger("hf_spam.serve")
#: The routes metrics are kept for by name; any other path counts as "other".
ROUTES = ("/predict", "/", "/health", "/info", "/metrics")
#: Seconds a client told the queue is full should wait before sending again.
RETRY_AFTER_S = 1


class ApiError(Exception):
    """An answer other than 200: its status, TEI's error kind, one line, extra headers."""

    def __init__(
        self, status: int, error_type: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.error_type, self.headers = status, error_type, headers or {}


def _error_response(status: int, error_type: str, message: str, headers=None) -> JSONResponse:
    body = {"error": first_line(message), "error_type": error_type}
    return JSONResponse(body, status_code=status, headers=headers)


class _Guard:
    """Outermost of the app's own layers: times and counts every answer, and turns an exception
    nothing else handled into a 500 of the usual JSON shape, logged as one line."""

    def __init__(self, app: Any, metrics: ServerMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [0]

        async def sent(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        except Exception as err:  # noqa: BLE001 - the client gets one line, never a traceback
            message = f"internal error: {type(err).__name__}: {first_line(str(err))}"
            logger.error("%s %s: %s", scope.get("method"), scope.get("path"), message)
            self.metrics.errors.labels(error_type="backend").inc()
            if not status[0]:
                await _error_response(500, "backend", message)(scope, receive, sent)
        route = scope["path"] if scope["path"] in ROUTES else "other"
        self.metrics.answered(route, status[0] or 500, time.perf_counter() - start)


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request's body, refused (413) as soon as it is known to exceed `max_bytes`."""
    too_large = ApiError(413, "validation", f"request body over {max_bytes} bytes (--max_bytes)")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def parse(model: type[BaseModel], body: bytes) -> Any:
    try:
        return model.model_validate_json(body)
    except ValidationError as err:
        raise ApiError(422, "validation", validation_message(err)) from None


def create_app(served: ServedModel, limits: BatchingArguments) -> FastAPI:
    """The app serving `served` within `limits`; its lifespan starts and stops the batcher."""
    metrics = ServerMetrics(limits.max_batch_size)
    batcher = Batcher(
        lambda texts, function: served.predict(texts, function, limits.max_batch_size),
        max_batch_size=limits.max_batch_size,
        max_wait_ms=limits.max_wait_ms,
        max_queue=limits.max_queue,
        metrics=metrics,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(
        title=f"hf_spam: {served.model_id}",
        version=package_version(),
        lifespan=lifespan,
        description="TEI's POST /predict and the Inference API's text classification at POST /.",
    )
    app.state.batcher, app.state.metrics = batcher, metrics

    def check_count(texts: list[str]) -> None:
        if len(texts) > limits.max_texts:
            raise ApiError(
                413,
                "validation",
                f"batch size {len(texts)} > maximum allowed batch size {limits.max_texts} "
                "(--max_texts)",
            )

    async def classify(texts: list[str], function: str | None) -> list[Any]:
        try:
            return await batcher.classify(texts, function)
        except Overloaded as err:
            headers = {"Retry-After": str(RETRY_AFTER_S)}
            raise ApiError(503, "overloaded", str(err), headers) from None
        except InferenceFailed as err:
            raise ApiError(424, "backend", str(err)) from None

    async def check_lengths(texts: list[str]) -> None:
        """TEI's `truncate: false`: a text longer than the context is refused, not cut."""
        counts = await batcher.in_worker(served.token_counts, texts)
        context = served.context_length
        for number, count in enumerate(counts):
            if count > context:
                where = f"inputs item {number}" if len(texts) > 1 else "inputs"
                raise ApiError(
                    422,
                    "tokenizer",
                    f"{where}: {count} tokens, more than the model's context of {context} "
                    "(send truncate: true to cut it, as in training)",
                )

    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError) -> JSONResponse:
        metrics.errors.labels(error_type=err.error_type).inc()
        return _error_response(err.status, err.error_type, str(err), err.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> JSONResponse:
        metrics.errors.labels(error_type="validation").inc()
        message = f"{err.detail}: {request.method} {request.url.path}"
        if err.status_code in (404, 405):
            message += "; routes: POST /predict, POST /, GET /health, GET /info, GET /metrics"
        return _error_response(err.status_code, "validation", message, err.headers)

    @app.post("/predict", summary="Text Embeddings Inference's predict")
    async def predict(request: Request) -> JSONResponse:
        body = parse(PredictRequest, await read_body(request, limits.max_bytes))
        texts = body.texts
        check_count(texts)
        if body.truncate is False:
            await check_lengths(texts)
        predictions = await classify(texts, "none" if body.raw_scores else None)
        answers = [ranked(prediction) for prediction in predictions]
        return JSONResponse(answers if body.batched else answers[0])

    @app.post("/", summary="The Inference API's text classification")
    async def text_classification(request: Request) -> JSONResponse:
        body = parse(ClassificationRequest, await read_body(request, limits.max_bytes))
        parameters = body.parameters
        top_k = parameters.top_k if parameters else None
        function = parameters.function_to_apply if parameters else None
        check_count(body.texts)
        predictions = await classify(body.texts, function)
        return JSONResponse([ranked(prediction, top_k) for prediction in predictions])

    @app.get("/health")
    async def health() -> JSONResponse:
        if not batcher.healthy:
            raise ApiError(503, "unhealthy", "unhealthy: the batcher is not running")
        return JSONResponse({"status": "ok"})

    @app.get("/info")
    async def info() -> JSONResponse:
        return JSONResponse(served.info(**limits.limits()))

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(_Guard, metrics=metrics)
    return app
