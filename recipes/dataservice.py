"""A tf.data service node for ``data_service: grpc://HOST:PORT,...``: ``python -m recipes.dataservice
--port PORT`` starts a dispatcher and one worker on this host and serves until stopped. Start one
per host that should build training batches (the data's files must be readable there); a run
given their addresses deals its batches round robin over them, in order (``recipes.data.service``).
"""

from __future__ import annotations

import argparse
import socket
import sys

from recipes.cli import run


def serve(port: int, host: str | None = None) -> None:
    import tensorflow as tf

    service = tf.data.experimental.service
    dispatcher = service.DispatchServer(service.DispatcherConfig(port=port))
    worker = service.WorkerServer(
        service.WorkerConfig(
            dispatcher_address=f"localhost:{port}", worker_address=f"{host or socket.gethostname()}:%port%"
        )
    )
    print(
        f"tf.data service: dispatcher grpc://{host or socket.gethostname()}:{port} with one worker; Ctrl-C stops it",
        flush=True,
    )
    try:
        dispatcher.join()
    finally:
        worker.stop()


def main(argv=None, prog="python -m recipes.dataservice") -> int:
    p = argparse.ArgumentParser(
        prog=prog, description="Run a tf.data service dispatcher and one worker on this host."
    )
    p.add_argument(
        "--port", type=int, required=True, help="the dispatcher's port (the worker picks a free one)"
    )
    p.add_argument("--host", help="the name other hosts reach this one by (default: this host's name)")
    args = p.parse_args(argv)
    try:
        return run(prog, serve, args.port, args.host)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
