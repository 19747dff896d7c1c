"""A real uvicorn server in a thread: the socket mode of tests and scenarios."""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import uvicorn
from fastapi import FastAPI

from qcog_mock.mockserver.api.edge import HEADER_SECONDS, http_protocol


def free_port() -> int:
    """A loopback port that was free a moment ago, for a server in another process."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve_in_thread(
    app: FastAPI, port: int = 0, header_seconds: float = HEADER_SECONDS
) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (``port`` 0: any free one); yields the base URL. A connection
    has ``header_seconds`` to send a request's head.

    The socket is bound and listening before the thread starts, so a client can connect at once.
    """
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say they are TCP;
    # with proto 0, every response would wait ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as error:
        sock.close()
        raise RuntimeError(
            f"127.0.0.1:{port} is not free ({error}); stop what listens there"
        ) from None
    sock.listen(128)
    # A request still open at shutdown gets 2 s: stopping never waits on a client.
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=2,
        http=http_protocol(header_seconds),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()


@contextmanager
def stopped_by_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise ``KeyboardInterrupt`` in the main thread, so that what the
    block holds is closed in order. Set explicitly: a process started as a shell's background
    job inherits SIGINT ignored. A second signal, while closing, ends the process at once."""
    received = 0

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal received
        received += 1
        if received > 1:
            os._exit(128 + signum)
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
