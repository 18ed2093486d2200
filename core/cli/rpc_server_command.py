"""``specchat-cli rpc-server``: lend this machine to a SpecChat (or llama.cpp) elsewhere.

A worker of llama.cpp's RPC backend, the same as llama.cpp's ``rpc-server``: a
client started with ``--rpc HOST:PORT`` puts part of its target's layers here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from core.cli.model_files import warn_about_threads
from core.engine.config import default_threads
from core.rpc.endpoints import DEFAULT_RPC_PORT, is_port_number
from core.rpc.errors import RpcWorkerError
from core.rpc.server import RpcServer, unsafe_host_warning


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="specchat-cli rpc-server",
        description=(
            "Serve this machine's GPUs (or its CPU and RAM) to a client that passes "
            "--rpc HOST:PORT. Serves one client at a time. The protocol has no "
            "authentication: listen on a trusted network only."
        ),
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only)",
    )
    parser.add_argument(
        "--port",
        type=port_number,
        default=DEFAULT_RPC_PORT,
        help=f"TCP port to listen on (default {DEFAULT_RPC_PORT})",
    )
    parser.add_argument(
        "-t",
        "--threads",
        type=int,
        default=default_threads(),
        help="CPU threads for the computations clients send (default: this machine's cores)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        metavar="DIR",
        help="cache big tensors here, so reloading the same model sends hashes, not data",
    )
    return parser


def port_number(text: str) -> int:
    """``--port``'s value: a TCP port, 1 to 65535."""
    if not is_port_number(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number from 1 to 65535")
    return int(text)


def run_rpc_server(argv: list[str], err: TextIO | None = None) -> int:
    err = err or sys.stderr
    args = build_parser().parse_args(argv)
    if args.threads < 1:
        raise RpcWorkerError(f"--threads must be >= 1, got {args.threads}")
    warn_about_threads(args.threads)
    server = RpcServer(args.host, args.port, args.threads, args.cache)
    server.start()
    # Once it listens: a host that cannot be listened on is an error, not a warning.
    warning = unsafe_host_warning(args.host, args.port)
    if warning:
        err.write(f"\n{warning}\n\n")
    err.write(f"RPC worker listening on {server.endpoint}; Ctrl+C stops it\n")
    err.flush()
    # join() with a timeout, so Ctrl+C is seen (a plain join waits uninterruptibly).
    while not server.wait(timeout_s=0.5):
        pass
    raise RpcWorkerError(
        f"the RPC worker on {server.endpoint} stopped; ggml's reason is printed above",
        server.endpoint,
    )
