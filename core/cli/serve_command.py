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
import time
from pathlib import Path

from core.cli.generate_command import (
    build_parser,
    check_model_files,
    generation_settings,
    model_configs,
)
from core.engine.config import ModelConfig
from core.errors import ConfigError, SpecChatError
from core.server.auth import API_KEY_ENV
from core.server.request_log import RequestLogEntry
from core.server.routes import ServingContext
from core.server.runner import DEFAULT_HOST, DEFAULT_PORT, LocalServer, check_port
from core.wording import with_full_stop
from core.worker.client import EngineWorker, WorkerCrashedError
from core.worker.generation_queue import DEFAULT_MAX_WAITING, GenerationQueue

# More engine crashes than this within the window end the server (exit code 1).
MAX_CRASHES_IN_WINDOW = 3
CRASH_WINDOW_S = 60.0
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
    server.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST}: this machine only)",
    )
    server.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port (default {DEFAULT_PORT}; 0: any free one, printed at start)",
    )
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
        help=f"requests that may wait behind the running one (default {DEFAULT_MAX_WAITING}); "
        "more get 503",
    )
    return parser


def _print_entry(entry: RequestLogEntry) -> None:
    print(entry.line(), file=sys.stderr, flush=True)


async def serve(args: argparse.Namespace) -> int:
    settings = generation_settings(args)
    target, draft = model_configs(args)
    check_model_files(args, target, draft)  # a bad file, and -c above its training
    reloader = _Reloader(target, draft)
    worker = EngineWorker(on_crash=reloader.engine_ended)
    reloader.worker = worker
    queue = GenerationQueue(lambda: worker, max_waiting=args.queue_size)
    context = ServingContext(
        queue,
        pair=lambda: worker.pair_info if worker.running else None,
        settings=lambda: settings,
        api_key=args.api_key,
        on_request=_print_entry,
        not_loaded="the engine process is reloading the model pair after it ended; "
        "try again in a few seconds",
    )
    server = LocalServer(context, args.host, args.port, embedded=False)
    reloader.server = server
    try:
        server.bind()  # a taken port or a bad address is said before minutes of loading
        print(f"loading {Path(target.path).name}...", file=sys.stderr, flush=True)
        pair = await worker.load(target, draft)
        await server.start()
        draft_name = Path(pair.draft_path).name if pair.draft_path else settings.drafting.source
        every = " (listening on every address of this machine)" if server.listens_everywhere else ""
        print(
            f"serving {Path(pair.target_path).name} (draft: {draft_name}) on "
            f"{server.base_url}{every}{'' if args.api_key else ' (no API key)'}",
            file=sys.stderr,
            flush=True,
        )
        await server.wait()
    finally:
        await server.stop()
        await reloader.close()
        await worker.close()
    return reloader.exit_code


class _Reloader:
    """Loads the pair again when the engine process dies (a crash in llama.cpp, the
    process killed for memory): a server with nobody at a window must come back on
    its own. Crashes in a row end the server with exit code 1, so a supervisor sees
    a pair that cannot stay up rather than a server that answers 503 forever."""

    def __init__(self, target: ModelConfig, draft: ModelConfig | None) -> None:
        self.target, self.draft = target, draft
        self.worker: EngineWorker | None = None
        self.server: LocalServer | None = None
        self.exit_code = 0
        self._crashes: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def engine_ended(self, error: WorkerCrashedError) -> None:
        if self._task is not None and not self._task.done():
            return  # it died while loading again: that load fails and says so
        now = time.monotonic()
        self._crashes = [t for t in self._crashes if now - t < CRASH_WINDOW_S] + [now]
        if len(self._crashes) > MAX_CRASHES_IN_WINDOW:
            print(
                f"error: {with_full_stop(str(error))} It ended {len(self._crashes)} times within "
                f"{CRASH_WINDOW_S:.0f} s; stopping the server",
                file=sys.stderr,
                flush=True,
            )
            self._stop_server(1)
            return
        print(f"{with_full_stop(str(error))} Loading the pair again…", file=sys.stderr, flush=True)
        self._task = asyncio.get_running_loop().create_task(self._reload())

    async def _reload(self) -> None:
        assert self.worker is not None
        try:
            await self.worker.load(self.target, self.draft)
        except SpecChatError as exc:
            print(f"error: the pair could not be loaded again: {exc}", file=sys.stderr, flush=True)
            self._stop_server(1)
            return
        print("the pair is loaded again; serving", file=sys.stderr, flush=True)

    def _stop_server(self, exit_code: int) -> None:
        self.exit_code = exit_code
        if self.server is not None:
            self.server.request_exit()

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def run_serve(argv: list[str]) -> int:
    args = build_serve_parser().parse_args(argv)
    if args.queue_size < 0:
        print("error: --queue-size must be >= 0", file=sys.stderr)
        return 2
    try:
        check_port(args.port)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(serve(args))
