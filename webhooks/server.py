"""Serving the receiver on loopback in a background thread (tests, the demo)."""

from __future__ import annotations

import contextvars
import socket
import threading
import time
from typing import Any

import uvicorn

__all__ = ["ReceiverServer"]


class ReceiverServer:
    """An ASGI app served by uvicorn on 127.0.0.1 in a thread, with the caller's Prefect settings.

    The thread runs in a copy of the caller's context, so a ``temporary_settings`` or test
    harness ``PREFECT_API_URL`` in force when it starts is the one its events go to.
    """

    def __init__(self, app: Any, *, port: int = 0) -> None:
        self.app = app
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", port))
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", backlog=4096
        )
        self._server = uvicorn.Server(config)
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run,
            args=(self._server.run,),
            kwargs={"sockets": [self._socket]},
            daemon=True,
        )

    def __enter__(self) -> ReceiverServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the webhook receiver did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._socket.close()
