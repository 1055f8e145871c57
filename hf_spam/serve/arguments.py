"""The flags of `hf-spam serve`: the model, where to listen, how to batch, what to refuse.

Parsed by `HfArgumentParser` (a section of --help each) and checked when parsed, so a bad value
stops the command before the model loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from ..errors import UsageError
from ..inference.load import InferenceArguments, check_device

__all__ = ["BatchingArguments", "ServeArguments"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
#: `--device` and `--trust_remote_code` as `predict` and `evaluate` take them.
_SHARED = {each.name: each.metadata for each in fields(InferenceArguments)}


def _positive(flag: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"--{flag} must be a positive integer, got {value!r}")


@dataclass
class BatchingArguments:
    """How concurrent requests are gathered into batches, and what the server refuses."""

    _argument_group_name = "batching and limits"

    max_batch_size: int = field(
        default=64,
        metadata={
            "help": "Texts per batch: concurrent requests' texts are gathered into one forward "
            "batch of the bulk path until it holds this many."
        },
    )
    max_wait_ms: float = field(
        default=5.0,
        metadata={
            "help": "How long a batch that is not full waits for more requests (milliseconds); "
            "0 runs whatever is waiting at once."
        },
    )
    max_queue: int = field(
        default=2048,
        metadata={
            "help": "Texts that may wait for a batch; a request beyond it is answered 503 with "
            "Retry-After."
        },
    )
    max_texts: int = field(
        default=256,
        metadata={"help": "Texts in one request (TEI's max_client_batch_size); more is 413."},
    )
    max_bytes: int = field(
        default=1_000_000, metadata={"help": "Bytes of one request's body; more is 413."}
    )

    def __post_init__(self) -> None:
        for flag in ("max_batch_size", "max_queue", "max_texts", "max_bytes"):
            _positive(flag, getattr(self, flag))
        if isinstance(self.max_wait_ms, bool) or not 0 <= self.max_wait_ms <= 10_000:
            raise UsageError(f"--max_wait_ms must be between 0 and 10000, got {self.max_wait_ms}")
        if self.max_texts > self.max_queue:
            raise UsageError(
                f"--max_texts {self.max_texts} is more than --max_queue {self.max_queue}: such a "
                "request could never be queued"
            )

    def limits(self) -> dict[str, Any]:
        """The limits as `GET /info` reports them (TEI's names where it has one)."""
        return {
            "max_batch_size": self.max_batch_size,
            "max_wait_ms": self.max_wait_ms,
            "max_queue": self.max_queue,
            "max_client_batch_size": self.max_texts,
            "max_bytes": self.max_bytes,
        }


@dataclass
class ServeArguments:
    """The model, and where the server listens."""

    _argument_group_name = "server"

    model: str = field(metadata={"help": "Model folder (from `hf-spam train`) or Hub repo id."})
    host: str = field(
        default=DEFAULT_HOST,
        metadata={"help": "Address to listen on (0.0.0.0: every interface of this machine)."},
    )
    port: int = field(
        default=DEFAULT_PORT, metadata={"help": "Port to listen on (0: any free port)."}
    )
    device: str | None = field(default=None, metadata=_SHARED["device"])
    trust_remote_code: bool = field(default=False, metadata=_SHARED["trust_remote_code"])
    num_threads: int | None = field(
        default=None,
        metadata={
            "help": "torch's threads for the forward passes (default: torch's, one per core); "
            "fewer leaves cores to the HTTP side and to other processes on the machine."
        },
    )
    graceful_timeout: float = field(
        default=30.0,
        metadata={
            "help": "Seconds a stopped server (SIGTERM, Ctrl-C) waits for the requests in "
            "flight before it closes their connections."
        },
    )
    access_log: bool = field(
        default=False, metadata={"help": "Log every request (uvicorn's access log)."}
    )
    log_level: str = field(
        default="info",
        metadata={"help": "uvicorn's log level: critical, error, warning, info, debug, trace."},
    )

    def __post_init__(self) -> None:
        if isinstance(self.port, bool) or not 0 <= self.port < 65536:
            raise UsageError(f"--port {self.port}: expected a port number between 0 and 65535")
        if self.num_threads is not None:
            _positive("num_threads", self.num_threads)
        if self.graceful_timeout < 0:
            raise UsageError(f"--graceful_timeout must be 0 or more, got {self.graceful_timeout}")
        levels = ("critical", "error", "warning", "info", "debug", "trace")
        if self.log_level not in levels:
            raise UsageError(f"--log_level {self.log_level!r}: choose from {', '.join(levels)}")
        check_device(self.device)
