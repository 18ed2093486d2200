"""The speculative decoding engine: draft, verify in one batch, accept, roll back.

One step, for history ``h`` whose last token ``h[-1]`` the target has not seen yet:

1. the drafter proposes ``d1..dk`` (draft model, n-gram lookup, or nothing);
2. the target decodes ``[h[-1], d1..dk]`` in one batch with logits for every row;
3. the verifier (core/engine/verification.py) keeps a prefix of the draft and adds
   the target's own token: a correction where a draft token was rejected, or a
   bonus token after a fully kept draft. Greedy answers and sample-and-match keep a
   draft token while it equals the target's sample; speculative sampling keeps it
   with probability min(1, p/q) and resamples a rejection from max(0, p - q);
4. both KV caches are truncated to the accepted prefix, so positions never skip.

With no draft the step is plain decoding, so the baseline shares every line. The
draft length of each step comes from core/engine/draft_length.py, which stops
drafting while speculation is slower than plain decoding.
"""

from __future__ import annotations

import logging
import numbers
import threading
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, replace

from core.engine.chat_template import ChatMessage, render_chat
from core.engine.config import (
    DraftSettings,
    DraftSource,
    GenerationSettings,
    ModelConfig,
    Verification,
    default_threads,
)
from core.engine.cpu_contention import DecodeThreads, OtherProgramsCpu
from core.engine.detokenize import (
    IncrementalDetokenizer,
    StopStringHoldback,
    continuation_texts,
)
from core.engine.draft_length import (
    DraftLengthController,
    DraftLengthMemory,
    typical_plain_step_ms,
)
from core.engine.drafting import Drafter, ModelDrafter, NgramDrafter, NoDrafter
from core.engine.events import (
    EmittedToken,
    Event,
    FinishedEvent,
    GenerationStats,
    Provenance,
    RejectedToken,
    StepEvent,
    StopReason,
)
from core.engine.lifecycle import CLOSED_MESSAGE, NativeGuard
from core.engine.model import DecodeCancelledError, LoadedModel
from core.engine.stream import AnswerStream
from core.engine.verification import (
    Draft,
    MatchVerifier,
    SpeculativeSampling,
    SpeculativeVerifier,
    Verifier,
)
from core.errors import (
    ConfigError,
    EngineClosedError,
    EngineError,
    PromptTooLongError,
    VocabMismatchError,
)
from core.gguf_meta import read_gguf_metadata
from core.vocab import VocabCompatibility, check_vocab_compatibility

logger = logging.getLogger(__name__)

# A verification slower than this (a big model on a CPU, a busy machine) is made
# cancellable from within, so a cancel never waits long for the step to end.
SLOW_STEP_MS = 100.0


def _model_progress(
    on_progress: Callable[[str, float], bool] | None, which: str
) -> Callable[[float], bool] | None:
    """Tag one model's load progress with its role ("target" or "draft")."""
    if on_progress is None:
        return None
    return lambda fraction: on_progress(which, fraction)


@dataclass
class _Totals:
    n_steps: int = 0
    n_drafted: int = 0
    draft_ms: float = 0.0
    verify_ms: float = 0.0
    # What the user received: the visible tokens, and those of them the draft made.
    n_shown: int = 0
    n_shown_accepted: int = 0

    def count_shown(self, tokens: Sequence[EmittedToken]) -> None:
        self.n_shown += len(tokens)
        self.n_shown_accepted += sum(t.provenance is Provenance.DRAFT_ACCEPTED for t in tokens)


class SpeculativeEngine:
    """Owns a target model and optionally a draft model; generates answers.

    One answer at a time. From any thread, while an answer streams: ``cancel()``
    (takes effect within a step, or within a fraction of a second while the prompt
    is processed), ``tokenize()``, ``tokenize_chat()``, ``detokenize()`` and
    ``close()`` (cancels the answer and waits for its step to end). After
    ``close()`` every call raises EngineClosedError. An engine dropped without
    ``close()`` frees its models when it is garbage-collected.

    Raises on construction:
        ModelFileError, ModelLoadError: a model file is missing, broken or refused.
        VocabMismatchError: the draft cannot draft for the target (checked from
            GGUF metadata before the draft's weights are loaded).
        LoadCancelledError: ``on_progress`` returned False during a load.

    ``on_progress("target" | "draft", fraction)`` reports llama.cpp's load progress;
    returning False aborts the load.
    """

    def __init__(
        self,
        target: ModelConfig,
        draft: ModelConfig | None = None,
        on_progress: Callable[[str, float], bool] | None = None,
    ) -> None:
        self.vocab_compatibility: VocabCompatibility | None = None
        if draft is not None:
            self.vocab_compatibility = check_vocab_compatibility(
                read_gguf_metadata(target.path).vocab, read_gguf_metadata(draft.path).vocab
            )
            if not self.vocab_compatibility.compatible:
                raise VocabMismatchError(
                    f"{draft.path.name} cannot draft for {target.path.name}: "
                    f"{self.vocab_compatibility.explain()}"
                )
        self.target = LoadedModel(target, on_progress=_model_progress(on_progress, "target"))
        self.draft: LoadedModel | None = None
        if draft is not None:
            try:
                self.draft = LoadedModel(
                    draft,
                    n_ctx_override=draft.n_ctx or self.target.n_ctx,
                    on_progress=_model_progress(on_progress, "draft"),
                )
            except BaseException:
                self.target.close()
                raise
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._guard = NativeGuard()
        self._warned_no_template = False
        # What the adaptive draft length learned, per drafting mode, so each answer
        # starts where the last one of that mode ended (core/engine/draft_length.py).
        self._draft_memory: dict[tuple[object, ...], DraftLengthMemory] = {}
        # A plain step's typical time in recent answers of any mode, greedy and
        # sampled apart: a cold adaptive answer (no memory for its mode yet) starts
        # drafting at once instead of measuring it again.
        self._plain_step_ms: dict[bool, float] = {}
        # How busy the rest of the machine is, looked at in the background.
        self._other_programs = OtherProgramsCpu()
        self._other_programs.start()

    def close(self) -> None:
        """Free both models; safe to call twice and from any thread.

        A streaming answer is cancelled and close() waits for its current step (and
        for tokenize/detokenize calls in other threads) to return; that answer's
        stream then ends with stop reason "cancelled".
        """
        self._guard.close(self._cancel.set, self._free_models)

    def _free_models(self) -> None:
        self._other_programs.stop()
        self.target.close()
        if self.draft is not None:
            self.draft.close()

    @property
    def closed(self) -> bool:
        return self._guard.closed

    def replace_draft(
        self,
        draft: ModelConfig | None,
        on_progress: Callable[[str, float], bool] | None = None,
    ) -> None:
        """Swap the draft model (or drop it with None) while the target stays loaded.

        The vocabulary check runs first, from metadata, so an incompatible draft
        leaves the current one in place. The old draft is freed before the new one
        loads, so both never sit in memory together; if the new one then fails to
        load, the engine is left without a draft.

        Raises:
            VocabMismatchError: the new draft cannot draft for the target.
            ConfigError: an answer is being generated.
            ModelFileError, ModelLoadError, LoadCancelledError: as for construction.
        """
        compatibility: VocabCompatibility | None = None
        if draft is not None:
            compatibility = check_vocab_compatibility(
                self.target.metadata.vocab, read_gguf_metadata(draft.path).vocab
            )
            if not compatibility.compatible:
                raise VocabMismatchError(
                    f"{draft.path.name} cannot draft for {self.target.path.name}: "
                    f"{compatibility.explain()}"
                )
        # Under the guard, so close() from another thread waits for the swap.
        with self._guard.use():
            if not self._lock.acquire(blocking=False):
                raise ConfigError("cannot change the draft model while an answer is generated")
            try:
                if self.draft is not None:
                    self.draft.close()
                    self.draft = None
                    self.vocab_compatibility = None
                # What the adaptive length learned of the old draft model (its
                # costs, how far its drafts survive) says nothing of the new one.
                for key in [k for k in self._draft_memory if k[0] is DraftSource.MODEL]:
                    del self._draft_memory[key]
                if draft is not None:
                    self.draft = LoadedModel(
                        draft,
                        n_ctx_override=draft.n_ctx or self.target.n_ctx,
                        on_progress=_model_progress(on_progress, "draft"),
                    )
                    self.vocab_compatibility = compatibility
            finally:
                self._lock.release()

    def __enter__(self) -> SpeculativeEngine:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- prompts ----------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        """Raw prompt text to tokens, with the model's BOS when it wants one."""
        with self._guard.use():
            return self.target.tokenize(text, add_special=True, parse_special=True)

    def tokenize_chat(self, messages: Sequence[ChatMessage]) -> list[int]:
        """Apply the target's chat template and tokenize, ready for a reply."""
        with self._guard.use():
            return self._tokenize_chat(messages)

    def _tokenize_chat(self, messages: Sequence[ChatMessage]) -> list[int]:
        target = self.target
        if not target.metadata.has_chat_template and not self._warned_no_template:
            self._warned_no_template = True
            logger.warning(
                "%s has no chat template; the conversation is written as ChatML, "
                "which this model may not have been trained on",
                target.path.name,
            )
        bos_text = target.token_bytes(target.bos_id, special=True).decode("utf-8", "replace")
        eos_text = target.token_bytes(target.eos_id, special=True).decode("utf-8", "replace")
        text = render_chat(target.metadata.chat_template, messages, bos_text, eos_text)
        tokens = target.tokenize(text, add_special=False, parse_special=True)
        if target.add_bos and (not tokens or tokens[0] != target.bos_id):
            tokens.insert(0, target.bos_id)
        return tokens

    def detokenize(self, tokens: Sequence[int]) -> str:
        with self._guard.use():
            return b"".join(self.target.token_bytes(t) for t in tokens).decode("utf-8", "replace")

    # -- generation -------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop the running answer (any thread).

        Counts from the moment ``generate()`` returned, before the first event too
        (``generate()`` clears older cancels). The answer ends with stop reason
        "cancelled" after at most the current step; prompt processing stops within
        a fraction of a second.
        """
        if self._guard.closed:
            raise EngineClosedError(CLOSED_MESSAGE)
        self._cancel.set()

    def _make_drafter(
        self, drafting: DraftSettings, speculative: SpeculativeSampling | None = None
    ) -> Drafter:
        if drafting.source is DraftSource.MODEL and drafting.n_max > 0:
            if self.draft is None:
                raise ConfigError("draft source 'model' needs a draft model; load one first")
            return ModelDrafter(
                self.draft,
                drafting,
                self.target.n_vocab,
                speculative,
                self.target.token_bytes,
                self._cancel,
            )
        if drafting.source is DraftSource.NGRAM and drafting.n_max > 0:
            return NgramDrafter(drafting)
        return NoDrafter()

    def generate(
        self, prompt: Sequence[int], settings: GenerationSettings | None = None
    ) -> AnswerStream:
        """Start the answer to ``prompt`` (token ids); iterate the result for events.

        The stream yields one ``StepEvent`` per draft/verify step that emitted
        visible tokens, then exactly one ``FinishedEvent``. Everything is checked
        here, at the call, and the engine is claimed for this answer until the
        stream ends (see AnswerStream); ``cancel()`` counts from now on.

        Raises:
            PromptTooLongError: when the prompt is empty or fills the context.
            ConfigError: settings the loaded models cannot honour, a prompt that is
                not a sequence of token ids, or an answer already streaming.
            EngineError: a token id outside the vocabulary.
            EngineClosedError: after ``close()``.
        """
        settings = settings or GenerationSettings()
        with self._guard.use():
            prompt, drafter, speculative = self._check_request(prompt, settings)
            if not self._lock.acquire(blocking=False):
                raise ConfigError("the engine is already generating an answer")
            self._cancel.clear()
        return AnswerStream(
            self._generate_locked(prompt, settings, drafter, speculative),
            self._guard,
            self._lock.release,
        )

    def _check_request(
        self, prompt: Sequence[int], settings: GenerationSettings
    ) -> tuple[list[int], Drafter, SpeculativeSampling | None]:
        if isinstance(prompt, str | bytes):
            raise ConfigError("the prompt must be token ids; turn text into them with tokenize()")
        prompt = list(prompt)
        if not prompt:
            raise PromptTooLongError("the prompt is empty")
        n_ctx = self.target.n_ctx
        if len(prompt) >= n_ctx:
            raise PromptTooLongError(
                f"the prompt has {len(prompt)} tokens but the context holds {n_ctx}; "
                "shorten the conversation or raise the context size"
            )
        n_vocab = self.target.n_vocab
        for token in prompt:
            if isinstance(token, bool) or not isinstance(token, numbers.Integral):
                raise ConfigError(f"the prompt must be token ids (ints), found {token!r}")
            if not 0 <= token < n_vocab:
                raise EngineError(
                    f"token id {token} is outside the vocabulary of "
                    f"{self.target.path.name} (0..{n_vocab - 1})"
                )
        drafting = settings.drafting
        drafting_on = drafting.source is not DraftSource.NONE and drafting.n_max > 0
        # A step verifies the newest token plus the draft in one batch.
        if drafting_on and self.target.n_batch < 2:
            raise ConfigError(
                f"a batch size of {self.target.n_batch} leaves no room for drafted tokens; "
                "use a batch size of at least 2, or turn drafting off"
            )
        if drafting_on and drafting.n_max > self.target.n_batch - 1:
            logger.warning(
                "draft-max %d is capped at %d: a verification batch holds the newest "
                "token plus the draft, and the batch size is %d",
                drafting.n_max,
                self.target.n_batch - 1,
                self.target.n_batch,
            )
        speculative = (
            SpeculativeSampling(settings.sampling)
            if not settings.sampling.greedy
            and drafting.verification is Verification.SPECULATIVE
            and drafting.source is not DraftSource.NONE
            and drafting.n_max > 0
            else None
        )
        drafter = self._make_drafter(drafting, speculative)
        return [int(token) for token in prompt], drafter, speculative

    def _generate_locked(
        self,
        prompt: list[int],
        settings: GenerationSettings,
        drafter: Drafter,
        speculative: SpeculativeSampling | None,
    ) -> Generator[Event, None, None]:
        target = self.target
        n_ctx = target.n_ctx
        drafting = settings.drafting
        # Plain decoding and greedy answers always use the native sampler, so the
        # baseline is llama.cpp's own sampling.
        verifier: Verifier = (
            SpeculativeVerifier(target, speculative)
            if speculative is not None
            else MatchVerifier(target, settings.sampling)
        )
        # Greedy and sampled answers keep different shares of a draft; so do the
        # draft sources and verification schemes.
        memory_key = (drafting.source, settings.sampling.greedy, drafting.verification)
        draft_length = DraftLengthController(
            drafting.n_max,
            drafting.n_min,
            drafting.adaptive,
            memory=self._draft_memory.get(memory_key),
            plain_ms_hint=self._plain_step_ms.get(settings.sampling.greedy),
        )
        plain_step_ms: list[float] = []
        detokenizer = IncrementalDetokenizer()
        holdback = StopStringHoldback(settings.stop_strings)
        totals = _Totals()
        histogram = [0] * (max(drafting.n_max, 0) + 1)
        n_predict = settings.n_predict if settings.n_predict >= 0 else None
        n_emitted = 0
        ttft_ms = 0.0
        stop_reason: StopReason | None = None
        detail = ""

        threads = DecodeThreads(
            [target, *([self.draft] if self.draft is not None else [])],
            default_threads(),
            self._other_programs,
        )
        threads.update()
        slow_steps = False
        started = time.perf_counter()
        reused = target.common_prefix_length(prompt[:-1])
        try:
            # A cancel (or close) before the first event counts, and a long prompt
            # is the slowest part of an answer: both prefills stop when cancelled.
            if self._cancel.is_set():
                raise DecodeCancelledError("cancelled before the prompt was processed")
            target.prefill(prompt[:-1], cancel=self._cancel)
            if isinstance(drafter, ModelDrafter):
                drafter.prefill(prompt[:-1], cancel=self._cancel)
            verifier.remember_prompt(prompt)
        except DecodeCancelledError:
            stop_reason = StopReason.CANCELLED
        except BaseException:
            verifier.close()
            raise
        prompt_done = time.perf_counter()
        history = prompt

        try:
            while stop_reason is None:
                if self._cancel.is_set():
                    stop_reason = StopReason.CANCELLED
                    break
                threads.update()
                remaining = n_predict - n_emitted if n_predict is not None else n_ctx
                if remaining <= 0:
                    stop_reason = StopReason.MAX_TOKENS
                    break
                if len(history) > n_ctx:
                    stop_reason = StopReason.CONTEXT_FULL
                    detail = f"the {n_ctx}-token context is full"
                    break
                draft_limit = min(
                    draft_length.next_length(),
                    remaining - 1,
                    n_ctx - len(history),
                    target.n_batch - 1,
                )
                step_start = time.perf_counter()
                draft = (
                    drafter.propose(history, draft_limit, draft_length.cutoff())
                    if draft_limit > 0
                    else Draft()
                )
                if len(draft) < drafting.n_min:
                    draft = Draft()  # too short to be worth a verification batch
                draft_done = time.perf_counter()
                if self._cancel.is_set():
                    stop_reason = StopReason.CANCELLED
                    break

                try:
                    # The abort callback costs a Python call per graph node, so only
                    # steps slow enough to delay a cancel noticeably get it.
                    target.append(
                        [history[-1], *draft.tokens],
                        all_logits=True,
                        cancel=self._cancel if slow_steps else None,
                    )
                except DecodeCancelledError:
                    stop_reason = StopReason.CANCELLED
                    break
                picked = verifier.verify(draft)
                n_accepted = len(picked) - 1

                # End of generation and the token budget cut the step short.
                emitted_ids: list[int] = []
                for token, _ in picked:
                    if target.is_end_of_generation(token):
                        stop_reason = StopReason.END_OF_GENERATION
                        break
                    emitted_ids.append(token)
                    if n_predict is not None and n_emitted + len(emitted_ids) >= n_predict:
                        stop_reason = StopReason.MAX_TOKENS
                        break
                # An accepted draft token that ended the answer (EOS) is not emitted:
                # it counts neither as accepted nor as rejected.
                n_accepted_emitted = min(n_accepted, len(emitted_ids))
                history = history + emitted_ids
                target.forget_from(len(history) - 1)
                drafter.rollback(history[:-1])
                verify_done = time.perf_counter()
                # Only such a step's time includes the next draft's first decode; the
                # controller fits its step costs on those alone.
                catches_up = bool(draft) and stop_reason is None and draft_length.drafting
                if catches_up:
                    # The next draft's first decode: on a GPU it runs while this
                    # step's tokens are reported. It belongs to this step's drafting
                    # cost, where propose would otherwise have counted it next step.
                    # Not after a probe of a switched-off draft: plain steps may
                    # follow, and the draft catches up in one batch when it resumes.
                    drafter.catch_up(history)
                caught_up = time.perf_counter()

                totals.n_steps += 1
                totals.n_drafted += len(draft)
                if draft:
                    histogram[n_accepted_emitted] += 1
                draft_ms = (draft_done - step_start + caught_up - verify_done) * 1000
                verify_ms = (verify_done - draft_done) * 1000
                slow_steps = verify_ms > SLOW_STEP_MS
                draft_length.record(
                    len(draft),
                    n_accepted,
                    draft_ms,
                    verify_ms,
                    draft.confidences,
                    timed_in_full=catches_up,
                )
                if not draft:
                    plain_step_ms.append(verify_ms)
                totals.draft_ms += draft_ms
                totals.verify_ms += verify_ms
                n_emitted += len(emitted_ids)

                tokens = [
                    EmittedToken(
                        token,
                        detokenizer.feed(target.token_bytes(token)),
                        provenance,
                        draft.probabilities[index]
                        if provenance is Provenance.DRAFT_ACCEPTED
                        else None,
                    )
                    for index, (token, provenance) in enumerate(picked[: len(emitted_ids)])
                ]
                if stop_reason is not None:
                    tokens = self._with_flushed_text(tokens, detokenizer)
                visible, hit_stop = holdback.feed(tokens)
                if hit_stop:
                    stop_reason = StopReason.STOP_STRING
                    visible = self._without_hidden_text(visible, holdback.cut_token)
                elif stop_reason is not None:
                    visible += holdback.flush()
                step_start_at = len(history) - len(emitted_ids)
                rejected_texts = self._texts_after(
                    history[max(len(prompt), step_start_at - 4) : step_start_at]
                    + draft.tokens[:n_accepted],
                    draft.tokens[n_accepted:],
                )
                rejected = tuple(
                    RejectedToken(token, text, probability)
                    for token, text, probability in zip(
                        draft.tokens[n_accepted:],
                        rejected_texts,
                        draft.probabilities[n_accepted:],
                        strict=True,
                    )
                )
                if visible or rejected or draft:
                    if not ttft_ms and visible:
                        ttft_ms = (time.perf_counter() - started) * 1000
                    totals.count_shown(visible)
                    yield StepEvent(
                        tuple(visible),
                        rejected,
                        len(draft),
                        n_accepted_emitted,
                        draft_ms,
                        verify_ms,
                    )
        finally:
            verifier.close()
            learned = draft_length.memory()
            if learned is not None:
                self._draft_memory[memory_key] = learned
            typical = typical_plain_step_ms(plain_step_ms)
            if typical is not None:
                self._plain_step_ms[settings.sampling.greedy] = typical

        if stop_reason in (StopReason.CANCELLED, StopReason.CONTEXT_FULL):
            leftover = holdback.flush()
            tail = detokenizer.flush()
            if tail and leftover:
                last = leftover[-1]
                leftover[-1] = replace(last, text=last.text + tail)
            if leftover:
                totals.count_shown(leftover)
                yield StepEvent(tuple(leftover), (), 0, 0, 0.0, 0.0)
        finished = time.perf_counter()
        assert stop_reason is not None
        stats = GenerationStats(
            n_prompt=len(prompt),
            n_prompt_reused=reused,
            prompt_ms=(prompt_done - started) * 1000,
            n_predict=totals.n_shown,
            decode_ms=(finished - prompt_done) * 1000,
            ttft_ms=ttft_ms,
            n_steps=totals.n_steps,
            n_drafted=totals.n_drafted,
            n_accept=totals.n_shown_accepted,
            draft_ms=totals.draft_ms,
            verify_ms=totals.verify_ms,
            accepted_length_histogram=tuple(histogram),
            draft_source=(
                DraftSource.NONE.value if isinstance(drafter, NoDrafter) else drafting.source.value
            ),
            draft_max=min(drafting.n_max, target.n_batch - 1),
            seed=verifier.seed,
        )
        yield FinishedEvent(stop_reason, stats, detail)

    @staticmethod
    def _with_flushed_text(
        tokens: list[EmittedToken], detokenizer: IncrementalDetokenizer
    ) -> list[EmittedToken]:
        tail = detokenizer.flush()
        if not tail or not tokens:
            return tokens
        last = tokens[-1]
        return [*tokens[:-1], replace(last, text=last.text + tail)]

    def _texts_after(self, answer: list[int], tokens: list[int]) -> list[str]:
        """The texts of ``tokens`` as they would stream after ``answer`` (token ids;
        its last few suffice): a character split across tokens shows whole, not as
        U+FFFD."""
        if not tokens:
            return []
        target = self.target
        context = b""
        # A decoder can only be waiting on the last 3 bytes: a few tokens suffice.
        for token in reversed(answer):
            context = target.token_bytes(token) + context
            if len(context) >= 3:
                break
        return continuation_texts(context, [target.token_bytes(t) for t in tokens])

    def _without_hidden_text(
        self, visible: list[EmittedToken], cut_token: EmittedToken | None
    ) -> list[EmittedToken]:
        """Replace the token cut at a stop string by tokens of only its shown text.

        A cut token's id still stands for its whole text, so the ids would say more
        than the answer shows. The shown part is tokenized again and kept when those
        tokens spell exactly its bytes; otherwise (e.g. vocabularies that prefix a
        space) the token is dropped, shortening the answer by less than one token.
        Tokens right before it that hold the first bytes of its first character
        (their text is empty; the holdback keeps them with it) go the same way, as
        do such tokens when the stop string begins with their character.
        """
        first = len(visible) if cut_token is None else len(visible) - 1
        while first > 0 and not visible[first - 1].text:
            first -= 1
        if cut_token is None or not visible:
            return visible[:first]
        target = self.target
        shown = visible[-1]
        shown_bytes = shown.text.encode("utf-8")
        held = b"".join(target.token_bytes(token.id) for token in visible[first:-1])
        if (held + target.token_bytes(cut_token.id)).startswith(shown_bytes):
            ids = target.tokenize(shown.text, add_special=False, parse_special=False)
            pieces = [target.token_bytes(token) for token in ids]
            if ids and b"".join(pieces) == shown_bytes:
                texts = continuation_texts(b"", pieces)
                return visible[:first] + [
                    EmittedToken(token, text, shown.provenance)
                    for token, text in zip(ids, texts, strict=True)
                ]
        return visible[:first]
