"""``--rpc`` and ``--tensor-split``: the flags that put a target's layers on RPC workers.

Shared by every command that loads a pair (generation, ``bench``, ``serve``):
``add_rpc_arguments(parser)`` adds them, ``with_rpc(args, target)`` applies them
to the target's config. The draft stays on this machine unless ``--rpc-draft``
asks for it on the workers too (``with_rpc_draft``): a draft is small and
decodes one token at a time, so a network round trip per draft token usually
costs more than it saves, but a draft too big for this machine can go there.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from core.cli.failures import UsageError, error_json
from core.engine.config import ModelConfig
from core.rpc.endpoints import parse_endpoints, parse_tensor_split
from core.rpc.errors import RpcWorkerError
from core.rpc.native import report_worker_loss_with


def add_rpc_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "RPC workers (llama.cpp's distributed backend; start them with specchat-cli rpc-server)"
    )
    group.add_argument(
        "--rpc",
        metavar="HOST:PORT[,...]",
        type=parse_endpoints,
        default=(),
        help=(
            "put the target's offloaded layers (-ngl, default all) on these RPC workers "
            "(and this machine's GPUs); the layers not offloaded stay on this CPU, the "
            "draft stays on this machine"
        ),
    )
    group.add_argument(
        "--tensor-split",
        "-ts",
        metavar="N,N,...",
        type=parse_tensor_split,
        default=(),
        help=(
            "proportions of the offloaded layers per device: the RPC workers in --rpc "
            "order, then this machine's GPUs (default: by each device's free memory)"
        ),
    )
    group.add_argument(
        "--rpc-draft",
        action="store_true",
        help=(
            "put the draft's offloaded layers (-ngld, default all) on the --rpc workers too, "
            "split by their free memory (default: the draft runs on this machine)"
        ),
    )


def with_rpc(args: argparse.Namespace, target: ModelConfig) -> ModelConfig:
    """``target`` with the workers and split given on the command line."""
    if not args.rpc and not args.tensor_split:
        return target
    if getattr(args, "json", False):
        # A lost worker ends the process from inside ggml, past the command's own
        # error handling: with --json its failure must still be the JSON object.
        report_worker_loss_with(_report_as_json)
    return dataclasses.replace(target, rpc_servers=args.rpc, tensor_split=args.tensor_split)


def with_rpc_draft(args: argparse.Namespace, draft: ModelConfig) -> ModelConfig:
    """``draft`` on the ``--rpc`` workers when ``--rpc-draft`` asks for it."""
    if not getattr(args, "rpc_draft", False):
        return draft
    if not args.rpc:
        raise UsageError(
            "--rpc-draft puts the draft on the RPC workers: give them with --rpc HOST:PORT"
        )
    return dataclasses.replace(draft, rpc_servers=args.rpc)


def _report_as_json(line: str) -> None:
    sys.stdout.write(error_json(RpcWorkerError.__name__, line) + "\n")
