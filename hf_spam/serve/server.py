"""Running the app on uvicorn: the listening socket, the graceful stop.

The socket is bound here, before the model loads, so a busy port or an address that is not this
machine's is one line naming `--host`/`--port` instead of uvicorn's log after a long load, and
`--port 0` can report the port it got. On SIGTERM or Ctrl-C uvicorn stops accepting, answers the
requests in flight (up to `graceful_timeout` seconds), runs the app's shutdown (the batcher
stops) and returns; the command then exits 0. uvicorn re-raises the signal it caught once it has
stopped; here the signals are ignored around it, so that re-raise ends nothing.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from typing import Any

from ..errors import UsageError

__all__ = ["bind", "run", "url_of"]

#: The signals uvicorn turns into a graceful stop.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to `host:port`, listening, or a `UsageError` naming the flag at fault."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise UsageError(
            f"--host {host}: unknown host name ({reason}); pass a name or address of this "
            "machine, e.g. 127.0.0.1 or 0.0.0.0"
        ) from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as err:
        sock.close()
        raise UsageError(
            f"cannot listen on {host}:{port} ({err.strerror}); pass another --port or --host"
        ) from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    """SIGINT and SIGTERM ignored outside uvicorn's own handlers (see the module's docstring)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {each: signal.signal(each, signal.SIG_IGN) for each in STOP_SIGNALS}
    try:
        yield
    finally:
        for each, handler in previous.items():
            signal.signal(each, handler)


def run(
    app: Any,
    sock: socket.socket,
    *,
    graceful_timeout: float = 30.0,
    log_level: str = "info",
    access_log: bool = False,
) -> list[str]:
    """Serve `app` on `sock` until SIGTERM or Ctrl-C; the names of the signals that stopped it."""
    import uvicorn

    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=access_log,
        timeout_graceful_shutdown=graceful_timeout,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    with _signals_ignored():
        server.run(sockets=[sock])
    sys.stdout.flush()
    caught = getattr(server, "_captured_signals", [])  # uvicorn's record; none if it changes
    return list(dict.fromkeys(signal.Signals(each).name for each in caught))
