"""``specchat-cli serve``: the OpenAI-compatible server, headless, llama-server's flags.

Takes the walkthrough's ``llama-server`` flags (``-m -md -c -cd -ngl -ngld
--draft-max --draft-min --draft-p-min --host --port``) and the generation flags of
``specchat-cli`` as the defaults of every answer; requests override them per field.
Without ``-m`` it serves the demo pair.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from core.cli.generate_command import build_parser, generation_settings, model_configs
from core.server.auth import API_KEY_ENV, check_bind
from core.server.request_log import RequestLogEntry
from core.server.routes import ServingContext
from core.server.runner import DEFAULT_HOST, DEFAULT_PORT, LocalServer
from core.worker.client import EngineWorker
from core.worker.generation_queue import DEFAULT_MAX_WAITING, GenerationQueue

_ONE_SHOT_FLAGS = {"prompt", "file", "chat", "system", "json", "color"}


def build_serve_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    parser.prog = "specchat-cli serve"
    parser.description = (
        "Serve the model pair through an OpenAI-compatible API (/v1/chat/completions, "
        "/v1/completions, /v1/models, /health) with speculative decoding. Without -m the "
        "demo pair is served. The sampling and drafting flags set each answer's defaults."
    )
    # llama-server's default: answer until the model stops or the context is full.
    parser.set_defaults(n_predict=-1)
    # The prompt and output flags belong to one-shot generation; requests bring
    # their own prompt and the answer goes to the client.
    for action in parser._actions:
        if action.dest in _ONE_SHOT_FLAGS:
            action.help = argparse.SUPPRESS
    server = parser.add_argument_group("server")
    server.add_argument("--host", default=DEFAULT_HOST, help="address to listen on")
    server.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (0: any free one)")
    server.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV) or None,
        help=f"require 'Authorization: Bearer KEY' (default: ${API_KEY_ENV}); needed to "
        "listen on any address other than this machine's",
    )
    server.add_argument(
        "--queue-size",
        type=int,
        default=DEFAULT_MAX_WAITING,
        help="requests that may wait behind the running one; more get 503",
    )
    return parser


def _print_entry(entry: RequestLogEntry) -> None:
    print(entry.line(), file=sys.stderr, flush=True)


async def serve(args: argparse.Namespace) -> int:
    check_bind(args.host, args.api_key)  # before minutes of loading, not after
    settings = generation_settings(args)
    target, draft = model_configs(args)
    worker = EngineWorker()
    try:
        print(f"loading {Path(target.path).name}...", file=sys.stderr, flush=True)
        pair = await worker.load(target, draft)
        queue = GenerationQueue(lambda: worker, max_waiting=args.queue_size)
        context = ServingContext(
            queue,
            pair=lambda: worker.pair_info if worker.running else None,
            settings=lambda: settings,
            api_key=args.api_key,
            on_request=_print_entry,
        )
        server = LocalServer(context, args.host, args.port, embedded=False)
        await server.start()
        draft_name = Path(pair.draft_path).name if pair.draft_path else settings.drafting.source
        print(
            f"serving {Path(pair.target_path).name} (draft: {draft_name}) on "
            f"{server.base_url}{'' if args.api_key else ' (no API key)'}",
            file=sys.stderr,
            flush=True,
        )
        await server.wait()
    finally:
        await worker.close()
    return 0


def run_serve(argv: list[str]) -> int:
    args = build_serve_parser().parse_args(argv)
    if args.queue_size < 0:
        print("error: --queue-size must be >= 0", file=sys.stderr)
        return 2
    return asyncio.run(serve(args))
