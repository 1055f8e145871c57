"""Dynamic batching: the texts of concurrent requests gathered into one batch of the bulk path.

A forward pass costs about the same for one text as for dozens, so the server gathers: a request
puts its texts in the queue and awaits its answer; the batcher takes the first waiting request,
every request already waiting behind it, then waits up to `max_wait_ms` for more while the batch
holds fewer than `max_batch_size` texts, and runs the batch through `predict` in one worker
thread (the event loop goes on accepting requests meanwhile). Answers go back to each request
in its own order. Requests asking for a different scoring (`raw_scores`, `function_to_apply`)
wait for the next batch rather than mix.

The queue is bounded in texts: a request that would take it past `max_queue` is refused at once
(`Overloaded`, answered 503 with `Retry-After`) rather than waiting without end. One worker
thread runs everything that touches the tokenizer and the model, so they are never used by two
threads at once.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..inference.files import Prediction
from .metrics import ServerMetrics

__all__ = ["Batcher", "InferenceFailed", "Overloaded"]

#: `predict(texts, function_to_apply)`: one prediction per text, in order.
Predict = Callable[[list[str], "str | None"], list[Prediction]]


class Overloaded(Exception):
    """The queue is full: the request is refused, to be sent again later."""


class InferenceFailed(Exception):
    """The batch a request was in failed in the model (its message is the one line to answer)."""


@dataclass
class _Job:
    texts: list[str]
    function: str | None
    future: asyncio.Future = field(repr=False)


class Batcher:
    """Gathers requests' texts into batches and runs them in a worker thread.

    `start()` inside the running event loop (the app's lifespan), `stop()` when the server has
    answered what was in flight. `classify(texts, function)` is what a request awaits.
    """

    def __init__(
        self,
        predict: Predict,
        *,
        max_batch_size: int,
        max_wait_ms: float,
        max_queue: int,
        metrics: ServerMetrics,
    ) -> None:
        self.predict = predict
        self.max_batch_size, self.max_wait, self.max_queue = (
            max_batch_size,
            max_wait_ms / 1000,
            max_queue,
        )
        self.metrics = metrics
        self.queued_texts = 0
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._deferred: collections.deque[_Job] = collections.deque()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hf-spam-batch")
        self._task: asyncio.Task | None = None

    # -- the requests' side ------------------------------------------------------------------

    async def classify(self, texts: list[str], function: str | None = None) -> list[Prediction]:
        """Predictions for `texts` from the next batches; `Overloaded` if the queue is full."""
        if self.queued_texts + len(texts) > self.max_queue:
            raise Overloaded(
                f"the queue holds {self.queued_texts} texts, at most {self.max_queue} "
                "(--max_queue); send again shortly"
            )
        future = asyncio.get_running_loop().create_future()
        self._add_queued(len(texts))
        self._queue.put_nowait(_Job(texts, function, future))
        return await future

    async def in_worker(self, function: Callable[..., Any], *args: Any) -> Any:
        """`function(*args)` in the worker thread, between batches (a tokenizer's work)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    @property
    def healthy(self) -> bool:
        return self._task is not None and not self._task.done()

    # -- the batcher's side ------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._executor.shutdown(wait=True)

    def _add_queued(self, count: int) -> None:
        self.queued_texts += count
        self.metrics.queued.set(self.queued_texts)

    async def _next_job(self, timeout: float | None) -> _Job | None:
        if timeout is None:
            return self._queue.get_nowait() if not self._queue.empty() else None
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11
            return None

    async def _gather(self) -> list[_Job]:
        """The next batch: the first job, those waiting already, then more until the batch is
        full or `max_wait` has passed. Jobs of another scoring are kept for the next batch."""
        loop = asyncio.get_running_loop()
        first = self._deferred.popleft() if self._deferred else await self._queue.get()
        batch, size = [first], len(first.texts)
        kept = collections.deque()
        while self._deferred and size < self.max_batch_size:
            job = self._deferred.popleft()
            if job.function == first.function:
                batch.append(job)
                size += len(job.texts)
            else:
                kept.append(job)
        deadline = loop.time() + self.max_wait
        while size < self.max_batch_size:
            left = deadline - loop.time()
            job = await self._next_job(left if left > 0 else None)
            if job is None:
                break
            if job.function != first.function:
                kept.append(job)
                continue
            batch.append(job)
            size += len(job.texts)
        self._deferred.extendleft(reversed(kept))
        return batch

    async def _run_forever(self) -> None:
        while True:
            batch = await self._gather()
            texts = [text for job in batch for text in job.texts]
            self._add_queued(-len(texts))
            self.metrics.batch_size.observe(len(texts))
            try:
                predictions = await self.in_worker(self.predict, texts, batch[0].function)
            except Exception as err:  # noqa: BLE001 - whatever the model raised, each request is told
                failure = InferenceFailed(f"inference failed: {type(err).__name__}: {err}")
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(failure)
                continue
            self.metrics.texts.inc(len(texts))
            start = 0
            for job in batch:
                if not job.future.done():  # a request whose client went away is not waited on
                    job.future.set_result(predictions[start : start + len(job.texts)])
                start += len(job.texts)
