"""Serving the sandbox over real HTTP on loopback: in a thread (tests, demos) or as a command."""

from __future__ import annotations

import argparse
import socket
import threading
import time
from typing import Any

import uvicorn

from prefect_iterable.sandbox.app import DEMO_API_KEY, Sandbox

__all__ = ["SandboxServer", "main"]


class SandboxServer:
    """A ``Sandbox`` served by uvicorn on 127.0.0.1 in a background thread.

    Examples:
        >>> with SandboxServer() as server:  # doctest: +SKIP
        ...     print(server.url, server.sandbox.state.requests())
    """

    def __init__(self, sandbox: Sandbox | None = None, *, port: int = 0, **options: Any) -> None:
        self.sandbox = sandbox or Sandbox(**options)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this: without it, a response written in two parts waits
        # for the client's delayed ACK, and every request takes 40 ms instead of one.
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket.bind(("127.0.0.1", port))
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.sandbox.base_url = self.url
        config = uvicorn.Config(
            self.sandbox,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def start(self) -> SandboxServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the sandbox did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._socket.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m prefect_iterable.sandbox``: serve a local Iterable until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m prefect_iterable.sandbox", description=main.__doc__
    )
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--time-scale", type=float, default=1.0, help="run limits N times faster")
    parser.add_argument("--no-limits", action="store_true", help="do not enforce rate limits")
    args = parser.parse_args(argv)
    sandbox = Sandbox(time_scale=args.time_scale, limits=not args.no_limits)
    sandbox.base_url = f"http://127.0.0.1:{args.port}"
    print(f"Iterable sandbox on {sandbox.base_url}  (API key: {DEMO_API_KEY})", flush=True)
    uvicorn.run(sandbox, host="127.0.0.1", port=args.port, log_level="warning", lifespan="off")
