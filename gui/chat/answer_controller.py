"""Runs one answer at a time: context check, store, worker, trace, view.

The flow of an answer::

    chat_messages(conversation) -> worker.tokenize_chat -> context check (ask if it overflows)
    -> store.begin_answer -> worker.generate: steps are queued as they arrive
    -> a flush at most every ~33 ms: trace.add_step -> view.append_tokens
       -> store.append_steps (one transaction per flush)
    -> FinishedEvent: last flush -> store.finish_answer -> readout under the answer

A step that arrives 33 ms or more after the last flush is flushed at once; one that
comes sooner waits for a single-shot timer, so a burst of steps costs one redraw
and one commit. A free-running 30 Hz timer woke the window 30 times a second
although steps come about 13 times a second on the demo pair, and on 2 cores each
wake-up takes a core from llama.cpp's threads. Public ``*_async`` methods are
what tests drive with the qasync loop's ``run_until_complete``; the plain ones
start them as tasks for the window.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from PySide6.QtCore import QObject, QTimer, Signal

from core.chat import ContextFit, chat_messages, drop_oldest_turns, fewest_turns_to_drop_async
from core.engine.chat_template import ChatMessage
from core.engine.config import GenerationSettings
from core.engine.events import FinishedEvent, StepEvent, event_from_dict, event_to_dict
from core.errors import SpecChatError
from core.settings import generation_settings_to_dict
from core.speculation.trace import AnswerTrace
from core.store import ConversationStore, StoreError
from core.worker.client import EngineWorker, PairInfo, WorkerCrashedError
from core.worker.generation_queue import GenerationQueue, Turn
from gui.chat.chat_view import ChatView
from gui.chat.message_widgets import AnswerWidget
from gui.kept_tasks import KeptTasks

logger = logging.getLogger(__name__)

FLUSH_INTERVAL_MS = 33  # about 30 Hz: smooth to the eye, few enough redraws and commits
# How long quitting waits for a running answer to stop cleanly before cutting it off.
SHUTDOWN_GRACE_S = 3.0


class OverflowChoice(enum.Enum):
    NEW_CHAT = "new_chat"
    DROP_OLDEST = "drop_oldest"
    # Drop them now and, for the rest of this conversation, without asking again.
    DROP_OLDEST_ALWAYS = "drop_oldest_always"
    CANCEL = "cancel"


# (the fit of the whole conversation, the fit after dropping the fewest oldest turns
# that makes it fit, or None when even the last message alone does not fit)
AskOverflow = Callable[[ContextFit, ContextFit | None], Awaitable[OverflowChoice]]


class SpeculationView(Protocol):
    """The live graphs (gui/panels/speculation_panel.py)."""

    def show_answer(self, trace: AnswerTrace) -> None: ...
    def set_streaming(self, streaming: bool) -> None: ...
    def show_conversation(self, traces: list[AnswerTrace]) -> None: ...


@dataclass
class _Running:
    conversation_id: int
    message_id: int
    # None while another conversation is on screen: the answer goes on into the trace
    # and the store, and gets a widget again when its conversation is opened.
    widget: AnswerWidget | None
    trace: AnswerTrace
    started: float
    pending: list[tuple[StepEvent, float]] = field(default_factory=list)
    # Why a flush could not be stored (a full disk): the answer is then stopped.
    store_failure: str = ""


class AnswerController(QObject):
    """Owns the open conversation and the answer being generated.

    Signals:
        busy_changed(bool): an answer started or ended.
        conversation_opened(int): the view now shows this conversation.
        conversations_changed(): titles or order may have changed (refresh the list).
        message_failed(str): something could not be sent; the sentence says why.
        text_returned(str): a message was not sent; give its text back to the input.
        answer_interrupted(str): the worker died mid-answer; the reason in words.
    """

    busy_changed = Signal(bool)
    conversation_opened = Signal(int)
    conversations_changed = Signal()
    message_failed = Signal(str)
    text_returned = Signal(str)
    answer_interrupted = Signal(str)

    def __init__(
        self,
        store: ConversationStore,
        view: ChatView,
        worker: Callable[[], EngineWorker | None],
        pair: Callable[[], PairInfo | None],
        settings: Callable[[], GenerationSettings],
        ask_overflow: AskOverflow,
        speculation: SpeculationView | None = None,
        parent: QObject | None = None,
        loading: Callable[[], bool] | None = None,
        queue: GenerationQueue | None = None,
        before_answer: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(parent)
        self._store = store
        self._view = view
        self._worker = worker
        # Shared with the local server: window answers and API requests take turns.
        self._queue = queue or GenerationQueue(worker)
        self._turn: Turn | None = None
        self._pair = pair
        self._settings = settings
        self._ask_overflow = ask_overflow
        self._speculation = speculation
        self._loading = loading or (lambda: False)
        # Stores what the window still holds for the conversation (the system prompt is
        # saved a moment after the last key): an answer must see what is on screen.
        self._before_answer = before_answer or (lambda: None)
        self.conversation_id: int | None = None
        # Conversations whose oldest turns are dropped without asking (this session).
        self._drop_without_asking: set[int] = set()
        self._running: _Running | None = None
        self._busy = False
        self._task: asyncio.Task[Any] | None = None
        self._tasks = KeptTasks(
            "answer task",
            on_failure=lambda exc: self.message_failed.emit(str(exc) or type(exc).__name__),
        )
        self._flush_timer = QTimer(self)
        self._flush_timer.setObjectName("answer_flush_timer")
        self._flush_timer.setSingleShot(True)
        self._flush_timer.timeout.connect(self.flush)
        self._flushed_at = 0.0  # perf_counter() of the last flush that moved steps
        view.regenerate_requested.connect(self.regenerate)
        view.edit_submitted.connect(self.edit_and_resend)

    # ----- state -------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._busy

    @property
    def answering_conversation_id(self) -> int | None:
        """The conversation an answer is being made for (None when idle)."""
        if not self._busy:
            return None
        return self._running.conversation_id if self._running else self.conversation_id

    def can_open_another(self) -> bool:
        """Whether the view may show another conversation now.

        While an answer streams, yes: it goes on in the background. Not while one is
        being prepared (the context check, the overflow question): the message is
        not stored yet and belongs to the conversation on screen.
        """
        return not self._busy or self._running is not None

    def ready_reason(self) -> str:
        """Why a message cannot be sent now ("" when it can)."""
        if self._busy:
            return "An answer is still being written; stop it first (Esc)."
        worker = self._worker()
        if worker is None or not worker.running or self._pair() is None:
            if self._loading():
                return "The model pair is still loading; send again once it is ready."
            return "Load a model pair first (right-hand panel)."
        return ""

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self._view.set_busy(busy)
            self.busy_changed.emit(busy)

    # ----- conversations ---------------------------------------------------------

    def open_conversation(self, conversation_id: int) -> None:
        """Show a stored conversation: its messages, colours, readouts and graphs.

        An answer being written goes on whichever conversation is shown; opening its
        conversation shows it live again.
        """
        conversation = self._store.load_conversation(conversation_id)
        self.conversation_id = conversation_id
        running = self._running
        if running is not None:
            running.widget = None  # the view's widgets go now
        self._view.clear()
        traces: list[AnswerTrace] = []
        for message in conversation.messages:
            if message.role == "user":
                self._view.add_user_message(message.id, message.text)
                continue
            if running is not None and message.id == running.message_id:
                # The live trace holds every flushed step; later ones follow at the next flush.
                running.widget = self._view.add_answer(message.id, running.trace)
                running.widget.append_tokens(running.trace.tokens)
                traces.append(running.trace)
                continue
            trace = AnswerTrace()
            widget = self._view.add_answer(message.id, trace)
            for data, at_s in message.steps:
                event = event_from_dict(data)
                if isinstance(event, StepEvent):
                    widget.append_tokens(trace.add_step(event, at_s))
            finished = event_from_dict(message.finished) if message.finished else None
            trace.finish(finished if isinstance(finished, FinishedEvent) else None)
            if message.interrupted and finished is None:
                widget.finish(None, None, interrupted_reason="the engine stopped before the end.")
            elif isinstance(finished, FinishedEvent):
                widget.finish(finished.stats, finished.stop_reason, finished.detail)
            else:
                widget.finish(None, None)
            traces.append(trace)
        if self._speculation is not None:
            self._speculation.show_conversation(traces)
            if running is not None:
                # Live graphs only while the answer being written is on screen.
                self._speculation.set_streaming(running.widget is not None)
        self._view.scroll_to_bottom()
        self.conversation_opened.emit(conversation_id)

    def new_conversation(self) -> int:
        conversation_id = self._store.create_conversation()
        self.open_conversation(conversation_id)
        self.conversations_changed.emit()
        return conversation_id

    # ----- intents from the window (start tasks) ---------------------------------------

    def send(self, text: str) -> None:
        if not self._start(self.send_async(text)):
            # The input box cleared itself on Enter: the text goes back, not away.
            self.text_returned.emit(text)

    def regenerate(self, answer_id: int) -> None:
        self._start(self.regenerate_async(answer_id))

    def edit_and_resend(self, message_id: int, text: str) -> None:
        self._start(self.edit_and_resend_async(message_id, text))

    def stop(self) -> None:
        """Ask the engine to end the answer; it ends with the text so far (Esc)."""
        worker = self._worker()
        if self._running is not None and worker is not None and worker.running:
            # Only this answer: an API request on the same engine runs on.
            turn = self._turn
            self._spawn(turn.cancel() if turn is not None else worker.cancel())

    def _start(self, coroutine: Coroutine[Any, Any, None]) -> bool:
        """Run ``coroutine`` as the answer task; False (and why) if one still runs."""
        if self._task is not None and not self._task.done():
            coroutine.close()
            self.message_failed.emit("An answer is still being written; stop it first (Esc).")
            return False
        self._task = self._spawn(coroutine)
        return True

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        return self._tasks.spawn(coroutine)

    # ----- the three ways an answer starts -------------------------------------------

    async def send_async(self, text: str) -> None:
        """Send a new user message in the open conversation (one is made if none)."""
        self._before_answer()
        reason = self.ready_reason()
        if reason:
            self.message_failed.emit(reason)
            self.text_returned.emit(text)
            return
        if self.conversation_id is None:
            self.new_conversation()
        assert self.conversation_id is not None
        self._set_busy(True)
        try:
            conversation = self._store.load_conversation(self.conversation_id)
            try:
                prepared = await self._prepare(chat_messages(conversation, text), text)
            except SpecChatError as exc:
                # E.g. the model's chat template refuses the conversation: say so and
                # give the text back rather than lose it.
                prepared = None
                self.message_failed.emit(str(exc))
            if prepared is None:
                self.text_returned.emit(text)
                return
            message_id = self._store.add_user_message(self.conversation_id, text)
            self._view.add_user_message(message_id, text)
            self.conversations_changed.emit()
            await self._stream(self.conversation_id, prepared)
        finally:
            self._set_busy(False)

    async def regenerate_async(self, answer_id: int) -> None:
        """Drop this answer (the last one) and answer its question again."""
        self._before_answer()
        reason = self.ready_reason()
        if reason or self.conversation_id is None:
            self.message_failed.emit(reason or "Open a conversation first.")
            return
        conversation = self._store.load_conversation(self.conversation_id)
        ids = [message.id for message in conversation.messages]
        if answer_id not in ids or ids.index(answer_id) == 0:
            return
        question = conversation.messages[ids.index(answer_id) - 1]
        self._set_busy(True)
        try:
            self._store.delete_messages_after(question.id)
            self._view.remove_after(question.id)
            await self._answer_stored_question(question.text)
        finally:
            self._set_busy(False)

    async def edit_and_resend_async(self, message_id: int, text: str) -> None:
        """Replace a user message; every later message is dropped and a new answer made."""
        self._before_answer()
        reason = self.ready_reason()
        if reason or self.conversation_id is None:
            self.message_failed.emit(reason or "Open a conversation first.")
            return
        self._set_busy(True)
        try:
            self._store.edit_user_message(message_id, text)
            self._view.remove_from(message_id)
            self._view.add_user_message(message_id, text)
            self.conversations_changed.emit()
            await self._answer_stored_question(text)
        finally:
            self._set_busy(False)

    async def _answer_stored_question(self, question: str) -> None:
        assert self.conversation_id is not None
        conversation = self._store.load_conversation(self.conversation_id)
        prepared = await self._prepare(chat_messages(conversation), question, stored=True)
        if prepared is not None:
            assert self.conversation_id is not None
            await self._stream(self.conversation_id, prepared)

    # ----- context check -----------------------------------------------------------

    async def _prepare(
        self, messages: Sequence[ChatMessage], question: str, stored: bool = False
    ) -> tuple[list[int], GenerationSettings] | None:
        """Token ids to send, after asking the user if the conversation overflows.

        Returns None when the user cancels. Choosing a new chat moves the question
        into a new conversation (opened in the view) and continues there.
        """
        worker = self._worker()
        pair = self._pair()
        assert worker is not None and pair is not None
        settings = self._settings()
        # Budget for the answer: its length limit, but a huge limit must not refuse
        # every prompt; the engine itself stops cleanly when the context fills up.
        budget = min(settings.n_predict, max(pair.n_ctx // 4, 1))
        prompt = await worker.tokenize_chat(messages)
        fit = ContextFit(len(prompt), budget, pair.n_ctx)
        if fit.fits:
            self._view.mark_hidden_turns(0)
            return prompt, settings

        async def count(candidate: Sequence[ChatMessage]) -> int:
            return len(await worker.tokenize_chat(candidate))

        reduced = await fewest_turns_to_drop_async(messages, count, pair.n_ctx, budget)
        conversation = self.conversation_id
        if reduced is not None and conversation in self._drop_without_asking:
            choice = OverflowChoice.DROP_OLDEST
        else:
            choice = await self._ask_overflow(fit, reduced)
        if choice is OverflowChoice.DROP_OLDEST_ALWAYS and conversation is not None:
            self._drop_without_asking.add(conversation)
        dropping = (OverflowChoice.DROP_OLDEST, OverflowChoice.DROP_OLDEST_ALWAYS)
        if choice in dropping and reduced is not None:
            kept = drop_oldest_turns(messages, reduced.dropped_turns)
            # Said in the chat, not only in the box: the model no longer sees them.
            self._view.mark_hidden_turns(reduced.dropped_turns)
            return await worker.tokenize_chat(kept), settings
        if choice is OverflowChoice.NEW_CHAT:
            # The old conversation keeps its history; the question starts the new one.
            old_id = self.conversation_id
            system_prompt = ""
            if old_id is not None:
                system_prompt = self._store.conversation_header(old_id).system_prompt
            new_id = self._store.create_conversation(system_prompt=system_prompt)
            self.open_conversation(new_id)
            self.conversations_changed.emit()
            fresh = [m for m in messages if m.role == "system"] + [ChatMessage("user", question)]
            fresh_prompt = await worker.tokenize_chat(fresh)
            if not ContextFit(len(fresh_prompt), budget, pair.n_ctx).fits:
                self.message_failed.emit(
                    "The message alone does not fit the context with its answer; shorten it."
                )
                return None
            if stored:
                message_id = self._store.add_user_message(new_id, question)
                self._view.add_user_message(message_id, question)
            return fresh_prompt, settings
        return None

    # ----- streaming -----------------------------------------------------------------

    async def _stream(
        self, conversation_id: int, prepared: tuple[list[int], GenerationSettings]
    ) -> None:
        prompt, settings = prepared
        worker = self._worker()
        pair = self._pair()
        assert worker is not None and pair is not None
        message_id = self._store.begin_answer(
            conversation_id, generation_settings_to_dict(settings), _pair_dict(pair)
        )
        trace = AnswerTrace()
        widget = self._view.add_answer(message_id, trace)
        run = _Running(conversation_id, message_id, widget, trace, time.perf_counter())
        self._running = run
        if self._speculation is not None:
            self._speculation.show_answer(trace)
            self._speculation.set_streaming(True)
        finished: FinishedEvent | None = None
        try:
            async with self._queue.turn("window", bounded=False) as turn:
                self._turn = turn
                async for event in turn.generate(prompt, settings):
                    if isinstance(event, StepEvent):
                        self.queue_step(run, event)
                    else:
                        finished = event
        except WorkerCrashedError as exc:
            self._end(run, None, interrupted_reason=str(exc))
            self.answer_interrupted.emit(str(exc))
        except SpecChatError as exc:
            # The engine refused (e.g. the prompt no longer fits): keep what came.
            self._end(run, None, interrupted_reason=str(exc))
            self.message_failed.emit(str(exc))
        except asyncio.CancelledError:
            # The window is closing mid-answer: keep the partial answer, marked.
            self._end(run, None, interrupted_reason="the window was closed mid-answer.")
            raise
        else:
            self._end(run, finished)
        finally:
            self._turn = None

    def queue_step(self, run: _Running, step: StepEvent) -> None:
        """Queue a step that just arrived; flush now if the last flush is old enough,
        or else once it is (``FLUSH_INTERVAL_MS``)."""
        now = time.perf_counter()
        run.pending.append((step, now - run.started))
        if self._flush_timer.isActive():
            return  # the flush that is due takes this step too
        wait_ms = FLUSH_INTERVAL_MS - (now - self._flushed_at) * 1000
        if wait_ms <= 0:
            self.flush()
        else:
            self._flush_timer.start(math.ceil(wait_ms))

    def flush(self) -> None:
        """Move queued steps into the trace, the view and the store."""
        run = self._running
        if run is None or not run.pending:
            return
        self._flushed_at = time.perf_counter()
        pending, run.pending = run.pending, []
        tokens = []
        for step, at_s in pending:
            tokens.extend(run.trace.add_step(step, at_s))
        if run.widget is not None:
            run.widget.append_tokens(tokens)
        try:
            self._store.append_steps(run.message_id, [(event_to_dict(s), at) for s, at in pending])
        except StoreError as exc:
            # The text stays on screen; an answer that cannot be saved is stopped
            # rather than left to stream on unsaved (_end says why).
            if not run.store_failure:
                run.store_failure = str(exc)
                self.stop()

    def _end(
        self, run: _Running, finished: FinishedEvent | None, interrupted_reason: str = ""
    ) -> None:
        self._flush_timer.stop()
        self.flush()
        self._running = None
        if run.store_failure and not interrupted_reason:
            interrupted_reason = f"the answer could not be saved ({run.store_failure})."
            self.message_failed.emit(interrupted_reason)
        run.trace.finish(finished)
        try:
            self._store.finish_answer(
                run.message_id,
                event_to_dict(finished) if finished is not None else None,
                interrupted=finished is None or bool(interrupted_reason),
            )
        finally:
            # An answer not on screen shows finished when its conversation is opened.
            widget = run.widget
            if widget is not None and finished is not None and not interrupted_reason:
                widget.finish(finished.stats, finished.stop_reason, finished.detail)
            elif widget is not None:
                stats = finished.stats if finished is not None else None
                widget.finish(stats, None, interrupted_reason=interrupted_reason)
            if self._speculation is not None:
                self._speculation.set_streaming(False)
                # The conversation's graphs now include this answer.
                self._speculation.show_conversation([a.trace for a in self._view.answers()])
            self.conversations_changed.emit()

    async def shutdown(self) -> None:
        """Stop the running answer and save it before the loop closes (quit)."""
        task = self._task
        if task is None or task.done():
            return
        worker = self._worker()
        if worker is not None and worker.running and self._running is not None:
            try:
                await asyncio.wait_for(worker.cancel(), SHUTDOWN_GRACE_S)
                await asyncio.wait_for(asyncio.shield(task), SHUTDOWN_GRACE_S)
            except (TimeoutError, SpecChatError):
                logger.warning("the answer did not stop in time; saving it as interrupted")
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _pair_dict(pair: PairInfo) -> dict[str, Any]:
    data = dataclasses.asdict(pair)
    return {
        key: str(value) if value is not None and key.endswith("_path") else value
        for key, value in data.items()
    }
