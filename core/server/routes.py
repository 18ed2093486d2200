"""The Starlette application: OpenAI's endpoints on the engine's generation queue.

Every answer takes a turn on the one ``GenerationQueue`` the window's chat uses
too, so API requests and window messages never interleave in the engine. A
request that finds the queue full gets 503 with ``Retry-After`` at once. A
streaming client that disconnects is noticed by Starlette, which cancels the
stream; leaving ``Turn.generate`` early cancels the answer in the engine process
before its next step, and the turn passes to the next request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Send

from core.engine import FinishedEvent, GenerationSettings, StepEvent, StopReason
from core.errors import ConfigError, PromptTooLongError, SpecChatError
from core.server.api_errors import ApiError, bad_request
from core.server.auth import key_matches
from core.server.request_log import RequestLogEntry, RequestLogger
from core.server.request_parsing import (
    MAX_BODY_BYTES,
    ApiRequest,
    Endpoint,
    parse_json_body,
    parse_request,
)
from core.server.responses import DONE, AnswerHeader, sse
from core.worker.client import PairInfo
from core.worker.generation_queue import GenerationQueue, QueueFullError, Turn

logger = logging.getLogger(__name__)

# A full queue empties in about one answer; clients retry after this many seconds.
RETRY_AFTER_S = 2


@dataclass
class ServingContext:
    """What the routes serve from.

    Attributes:
        queue: the engine's generation queue (shared with the window's chat).
        pair: the loaded pair now, or None.
        settings: the base settings of an answer (the window's draft settings panel,
            or the command line's flags); request fields override them.
        api_key: required as ``Authorization: Bearer KEY`` when set.
        on_request: told about every answered request (the request log).
    """

    queue: GenerationQueue
    pair: Callable[[], PairInfo | None]
    settings: Callable[[], GenerationSettings]
    api_key: str | None = None
    on_request: RequestLogger | None = None
    # Why no pair is there to answer: the window's user loads one, the command line
    # reloads its own after an engine crash.
    not_loaded: str = "no model pair is loaded; load one in SpecChat first"
    # Set when the server stops: open answers end now, with a word to their clients,
    # instead of being cut when the grace period runs out.
    stopping: bool = False

    def log(self, entry: RequestLogEntry) -> None:
        if self.on_request is not None:
            try:
                self.on_request(entry)
            except Exception:
                logger.exception("the request log failed")


def model_id(pair: PairInfo) -> str:
    return Path(pair.target_path).name


def _error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


class _ClosingStreamingResponse(StreamingResponse):
    """Closes its body generator and releases the queue turn however the response
    ends, disconnects before the first byte included, so the answer is cancelled
    and the next request served right away rather than whenever the generator is
    garbage-collected."""

    def __init__(self, content: AsyncGenerator[bytes, None], turn: Turn) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._content = content
        self._turn = turn

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            try:
                await self._content.aclose()
            finally:
                self._turn.release()


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(
            413, f"request body is over the {MAX_BODY_BYTES}-byte limit", code="too_large"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(
                413, f"request body is over the {MAX_BODY_BYTES}-byte limit", code="too_large"
            )
        chunks.append(chunk)
    return b"".join(chunks)


class Routes:
    """Handlers bound to one ServingContext."""

    def __init__(self, context: ServingContext) -> None:
        self.context = context

    # ----- helpers -----------------------------------------------------------------

    def _check_key(self, request: Request) -> None:
        if not key_matches(request.headers.get("authorization"), self.context.api_key):
            raise ApiError(
                401,
                "invalid or missing API key; send it as 'Authorization: Bearer KEY'",
                error_type="authentication_error",
                code="invalid_api_key",
            )

    def _pair(self) -> PairInfo:
        pair = self.context.pair()
        if pair is None:
            raise ApiError(
                503,
                self.context.not_loaded,
                error_type="server_error",
                code="model_not_loaded",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        return pair

    def _take_turn(self) -> Turn:
        try:
            return self.context.queue.turn("api")
        except QueueFullError as exc:
            raise ApiError(
                503,
                str(exc),
                error_type="server_error",
                code="queue_full",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            ) from None

    async def _tokenize(self, parsed: ApiRequest, pair: PairInfo) -> list[int]:
        # Tokenizing needs no turn: the engine process runs commands one at a time,
        # and a tokenize call changes no state.
        worker = self.context.queue.worker()
        if worker is None:
            raise self._no_worker()
        field = "messages" if parsed.endpoint is Endpoint.CHAT else "prompt"
        if parsed.endpoint is Endpoint.CHAT:
            if not pair.has_chat_template:
                raise bad_request("messages", "the loaded model has no chat template")
            prompt = await worker.tokenize_chat(parsed.messages)
        else:
            prompt = await worker.tokenize(parsed.prompt)
        if len(prompt) >= pair.n_ctx:
            raise bad_request(
                field,
                f"the prompt has {len(prompt)} tokens but the context holds {pair.n_ctx}; "
                "shorten it",
            )
        return prompt

    @staticmethod
    def _no_worker() -> ApiError:
        return ApiError(503, "the engine is not running", error_type="server_error")

    # ----- endpoints --------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        if self.context.pair() is None:
            return JSONResponse({"status": "no model loaded"}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def models(self, request: Request) -> Response:
        endpoint = "GET /v1/models"
        try:
            self._check_key(request)
        except ApiError as exc:
            self.context.log(RequestLogEntry(endpoint, exc.status, note=str(exc)))
            return _error_response(exc)
        pair = self.context.pair()
        data = [_model_object(pair)] if pair is not None else []
        self.context.log(RequestLogEntry(endpoint, 200))
        return JSONResponse({"object": "list", "data": data})

    async def model(self, request: Request) -> Response:
        """``GET /v1/models/{id}`` (the openai client's ``models.retrieve``)."""
        wanted = request.path_params["model"]
        endpoint = "GET /v1/models/{model}"
        try:
            self._check_key(request)
            pair = self.context.pair()
            if pair is None or wanted != model_id(pair):
                loaded = f"the loaded model is {model_id(pair)}" if pair else "none is loaded"
                raise ApiError(404, f"no model {wanted!r} here; {loaded}", code="model_not_found")
        except ApiError as exc:
            self.context.log(RequestLogEntry(endpoint, exc.status, note=str(exc)))
            return _error_response(exc)
        self.context.log(RequestLogEntry(endpoint, 200))
        return JSONResponse(_model_object(pair))

    async def chat_completions(self, request: Request) -> Response:
        return await self._answer(request, Endpoint.CHAT, "POST /v1/chat/completions")

    async def completions(self, request: Request) -> Response:
        return await self._answer(request, Endpoint.COMPLETION, "POST /v1/completions")

    async def _answer(self, request: Request, endpoint: Endpoint, name: str) -> Response:
        turn: Turn | None = None
        try:
            self._check_key(request)
            body = parse_json_body(await _read_body(request))
            pair = self._pair()
            try:
                parsed = parse_request(body, endpoint, self.context.settings(), pair.n_ctx)
            except ConfigError as exc:
                raise ApiError(400, str(exc)) from None
            turn = self._take_turn()
            prompt = await self._tokenize(parsed, pair)
        except SpecChatError as exc:
            if turn is not None:
                turn.release()
            error = exc if isinstance(exc, ApiError) else _engine_error(exc)
            self.context.log(RequestLogEntry(name, error.status, note=str(error)))
            return _error_response(error)
        except BaseException:
            if turn is not None:
                turn.release()
            raise
        header = AnswerHeader(endpoint, model_id(pair))
        if parsed.stream:
            return _ClosingStreamingResponse(self._stream(turn, prompt, parsed, header, name), turn)
        return await self._whole(request, turn, prompt, parsed, header, name)

    async def _whole(
        self,
        request: Request,
        turn: Turn,
        prompt: list[int],
        parsed: ApiRequest,
        header: AnswerHeader,
        name: str,
    ) -> Response:
        parts: list[str] = []
        tokens = 0
        finished: FinishedEvent | None = None
        # The body is read, so the next ASGI message is the client hanging up. A plain
        # task waits for it: Starlette's is_disconnected() uses an anyio cancel scope
        # whose delayed callbacks need a running loop, which qasync does not always have.
        disconnected = asyncio.ensure_future(_wait_for_disconnect(request))
        try:
            if not await _turn_before_hang_up(turn, disconnected):
                self.context.log(RequestLogEntry(name, 499, note="client left while queued"))
                return Response(status_code=499)
            try:
                async for event in turn.generate(prompt, parsed.settings):
                    if isinstance(event, StepEvent):
                        parts.append(event.text)
                        tokens += len(event.tokens)
                        # Nobody reads the answer any more: stop it (within a step).
                        if disconnected.done():
                            break
                        if self.context.stopping:
                            raise _shutting_down(tokens)
                    else:
                        finished = event
            finally:
                turn.release()  # entered by _turn_before_hang_up
        except SpecChatError as exc:
            error = _engine_error(exc)
            self.context.log(RequestLogEntry(name, error.status, tokens, note=str(error)))
            return _error_response(error)
        finally:
            disconnected.cancel()
        if finished is None:
            self.context.log(RequestLogEntry(name, 499, tokens, note="client disconnected"))
            return Response(status_code=499)
        self.context.log(_entry(name, 200, finished))
        return JSONResponse(header.complete("".join(parts), finished))

    async def _stream(
        self,
        turn: Turn,
        prompt: list[int],
        parsed: ApiRequest,
        header: AnswerHeader,
        name: str,
    ) -> AsyncGenerator[bytes, None]:
        finished: FinishedEvent | None = None
        tokens = 0
        try:
            async with turn:
                first = header.first_chunk()
                if first is not None:
                    yield sse(first)
                async for event in turn.generate(prompt, parsed.settings):
                    if isinstance(event, StepEvent):
                        tokens += len(event.tokens)
                        yield sse(header.text_chunk(event.text))
                        if self.context.stopping:
                            raise _shutting_down(tokens)
                    else:
                        finished = event
            assert finished is not None
            yield sse(header.last_chunk(finished))
            if parsed.include_usage:
                yield sse(header.usage_chunk(finished))
            yield DONE
            self.context.log(_entry(name, 200, finished))
        except SpecChatError as exc:
            # Headers are gone already: the error travels as an event, as in
            # llama.cpp's server.
            error = _engine_error(exc)
            self.context.log(RequestLogEntry(name, error.status, tokens, note=str(error)))
            yield sse(error.body())
        except (GeneratorExit, asyncio.CancelledError):
            self.context.log(RequestLogEntry(name, 499, tokens, note="client disconnected"))
            raise


def _model_object(pair: PairInfo) -> dict[str, Any]:
    return {
        "id": model_id(pair),
        "object": "model",
        "created": 0,
        "owned_by": "specchat",
        "meta": {
            "draft": Path(pair.draft_path).name if pair.draft_path else None,
            "n_ctx": pair.n_ctx,
            "backend": pair.backend,
            "device": pair.device,
        },
    }


def _shutting_down(tokens: int) -> ApiError:
    return ApiError(
        503,
        f"the server is shutting down; the answer was stopped after {tokens} tokens",
        error_type="server_error",
        code="shutting_down",
    )


async def _turn_before_hang_up(turn: Turn, disconnected: asyncio.Future[None]) -> bool:
    """Wait for the turn; False (and the place given up) if the client hangs up first,
    so a queue of abandoned requests does not keep others out."""
    entering: asyncio.Future[Any] = asyncio.ensure_future(turn.begin())
    waits: set[asyncio.Future[Any]] = {entering, disconnected}
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    if entering.done():
        return True
    entering.cancel()  # leaves the queue (Turn.begin)
    await asyncio.gather(entering, return_exceptions=True)
    return False


def _engine_error(exc: SpecChatError) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, PromptTooLongError | ConfigError):
        return ApiError(400, str(exc))
    return ApiError(500, str(exc), error_type="server_error")


def _entry(name: str, status: int, finished: FinishedEvent) -> RequestLogEntry:
    stats = finished.stats
    return RequestLogEntry(
        name,
        status,
        stats.n_predict,
        stats.decode_tokens_per_second,
        stats.acceptance if stats.n_drafted else None,
        note="cancelled" if finished.stop_reason is StopReason.CANCELLED else "",
    )


def create_app(context: ServingContext) -> Starlette:
    routes = Routes(context)

    def route(path: str, handler: Callable[[Request], Any], method: str) -> Route:
        return Route(path, handler, methods=[method])

    async def http_error(request: Request, exc: Exception) -> Response:
        # Unknown paths and wrong methods, in OpenAI's error shape too.
        assert isinstance(exc, HTTPException)
        error = ApiError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}")
        return _error_response(error)

    return Starlette(
        exception_handlers={HTTPException: http_error},
        routes=[
            route("/health", routes.health, "GET"),
            route("/v1/health", routes.health, "GET"),
            route("/v1/models", routes.models, "GET"),
            route("/models", routes.models, "GET"),
            route("/v1/models/{model:path}", routes.model, "GET"),
            route("/models/{model:path}", routes.model, "GET"),
            route("/v1/chat/completions", routes.chat_completions, "POST"),
            route("/chat/completions", routes.chat_completions, "POST"),
            route("/v1/completions", routes.completions, "POST"),
            route("/completions", routes.completions, "POST"),
        ],
    )


async def _wait_for_disconnect(request: Request) -> None:
    """Return once the client has closed the connection (a body is already read)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
