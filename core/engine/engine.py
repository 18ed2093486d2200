"""The speculative decoding engine: draft, verify in one batch, accept, roll back.

One step, for history ``h`` whose last token ``h[-1]`` the target has not seen yet:

1. the drafter proposes ``d1..dk`` (draft model, n-gram lookup, or nothing);
2. the target decodes ``[h[-1], d1..dk]`` in one batch with logits for every row;
3. row i is sampled; ``d(i+1)`` is accepted while it equals the sample; the first
   sample that differs is the target's correction, and if all match, the sample of
   the last row is a bonus token;
4. both KV caches are truncated to the accepted prefix, so positions never skip.

With no draft the step is plain decoding, so the baseline shares every line.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

from core.engine.chat_template import ChatMessage, render_chat
from core.engine.config import DraftSettings, DraftSource, GenerationSettings, ModelConfig
from core.engine.detokenize import IncrementalDetokenizer, StopStringHoldback
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
from core.engine.model import LoadedModel
from core.engine.sampling import TargetSampler
from core.errors import ConfigError, PromptTooLongError, VocabMismatchError
from core.gguf_meta import read_gguf_metadata
from core.vocab import VocabCompatibility, check_vocab_compatibility

logger = logging.getLogger(__name__)


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
    n_accept: int = 0
    draft_ms: float = 0.0
    verify_ms: float = 0.0


class SpeculativeEngine:
    """Owns a target model and optionally a draft model; generates answers.

    Not thread-safe: one thread generates at a time. ``cancel()`` may be called
    from any thread and takes effect before the next step.

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

    def close(self) -> None:
        self.target.close()
        if self.draft is not None:
            self.draft.close()

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
        if not self._lock.acquire(blocking=False):
            raise ConfigError("cannot change the draft model while an answer is generated")
        try:
            if self.draft is not None:
                self.draft.close()
                self.draft = None
                self.vocab_compatibility = None
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
        return self.target.tokenize(text, add_special=True, parse_special=True)

    def tokenize_chat(self, messages: Sequence[ChatMessage]) -> list[int]:
        """Apply the target's chat template and tokenize, ready for a reply."""
        target = self.target
        bos_text = target.token_bytes(target.bos_id, special=True).decode("utf-8", "replace")
        eos_text = target.token_bytes(target.eos_id, special=True).decode("utf-8", "replace")
        text = render_chat(target.metadata.chat_template, messages, bos_text, eos_text)
        tokens = target.tokenize(text, add_special=False, parse_special=True)
        if target.add_bos and (not tokens or tokens[0] != target.bos_id):
            tokens.insert(0, target.bos_id)
        return tokens

    def detokenize(self, tokens: Sequence[int]) -> str:
        return b"".join(self.target.token_bytes(t) for t in tokens).decode("utf-8", "replace")

    # -- generation -------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop the running answer before its next step (any thread)."""
        self._cancel.set()

    def _make_drafter(self, drafting: DraftSettings) -> Drafter:
        if drafting.source is DraftSource.MODEL and drafting.n_max > 0:
            if self.draft is None:
                raise ConfigError("draft source 'model' needs a draft model; load one first")
            return ModelDrafter(self.draft, drafting, self.target.n_vocab)
        if drafting.source is DraftSource.NGRAM and drafting.n_max > 0:
            return NgramDrafter(drafting)
        return NoDrafter()

    def generate(
        self, prompt: Sequence[int], settings: GenerationSettings | None = None
    ) -> Iterator[Event]:
        """Stream the answer to ``prompt`` (token ids) as events.

        Yields one ``StepEvent`` per draft/verify step that emitted visible tokens,
        then exactly one ``FinishedEvent``.

        Raises:
            PromptTooLongError: before any work, when the prompt fills the context.
            ConfigError: settings the loaded models cannot honour.
        """
        settings = settings or GenerationSettings()
        prompt = list(prompt)
        if not prompt:
            raise PromptTooLongError("the prompt is empty")
        n_ctx = self.target.n_ctx
        if len(prompt) >= n_ctx:
            raise PromptTooLongError(
                f"the prompt has {len(prompt)} tokens but the context holds {n_ctx}; "
                "shorten the conversation or raise the context size"
            )
        drafter = self._make_drafter(settings.drafting)
        if not self._lock.acquire(blocking=False):
            raise ConfigError("the engine is already generating an answer")
        self._cancel.clear()
        try:
            yield from self._generate_locked(prompt, settings, drafter)
        finally:
            self._lock.release()

    def _generate_locked(
        self, prompt: list[int], settings: GenerationSettings, drafter: Drafter
    ) -> Iterator[Event]:
        target = self.target
        n_ctx = target.n_ctx
        drafting = settings.drafting
        sampler = TargetSampler(target, settings.sampling)
        detokenizer = IncrementalDetokenizer()
        holdback = StopStringHoldback(settings.stop_strings)
        totals = _Totals()
        histogram = [0] * (max(drafting.n_max, 0) + 1)
        n_predict = settings.n_predict if settings.n_predict >= 0 else None
        n_emitted = 0
        ttft_ms = 0.0
        stop_reason: StopReason | None = None
        detail = ""

        started = time.perf_counter()
        reused = target.common_prefix_length(prompt[:-1])
        target.prefill(prompt[:-1])
        if (
            isinstance(drafter, ModelDrafter)
            and self.draft is not None
            and len(prompt) <= self.draft.n_ctx
        ):
            self.draft.prefill(prompt[:-1])
        sampler.remember_prompt(prompt)
        prompt_done = time.perf_counter()
        history = prompt

        try:
            while stop_reason is None:
                if self._cancel.is_set():
                    stop_reason = StopReason.CANCELLED
                    break
                remaining = n_predict - n_emitted if n_predict is not None else n_ctx
                if remaining <= 0:
                    stop_reason = StopReason.MAX_TOKENS
                    break
                if len(history) > n_ctx:
                    stop_reason = StopReason.CONTEXT_FULL
                    detail = f"the {n_ctx}-token context is full"
                    break
                draft_limit = min(
                    drafting.n_max, remaining - 1, n_ctx - len(history), target.n_batch - 1
                )
                step_start = time.perf_counter()
                draft = drafter.propose(history, draft_limit) if draft_limit > 0 else []
                if len(draft) < drafting.n_min:
                    draft = []  # too short to be worth a verification batch
                draft_done = time.perf_counter()

                target.append([history[-1], *draft], all_logits=True)
                picked: list[tuple[int, Provenance]] = []
                for row in range(len(draft) + 1):
                    token = sampler.pick(row)
                    if row < len(draft) and token == draft[row]:
                        picked.append((token, Provenance.DRAFT_ACCEPTED))
                        continue
                    if not draft:
                        provenance = Provenance.TARGET_ONLY
                    elif row < len(draft):
                        provenance = Provenance.TARGET_CORRECTION
                    else:
                        provenance = Provenance.TARGET_BONUS
                    picked.append((token, provenance))
                    break
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
                history = history + emitted_ids
                target.forget_from(len(history) - 1)
                drafter.rollback(history[:-1])
                verify_done = time.perf_counter()

                totals.n_steps += 1
                totals.n_drafted += len(draft)
                totals.n_accept += n_accepted
                if draft:
                    histogram[n_accepted] += 1
                draft_ms = (draft_done - step_start) * 1000
                verify_ms = (verify_done - draft_done) * 1000
                totals.draft_ms += draft_ms
                totals.verify_ms += verify_ms
                n_emitted += len(emitted_ids)

                tokens = [
                    EmittedToken(token, detokenizer.feed(target.token_bytes(token)), provenance)
                    for token, provenance in picked[: len(emitted_ids)]
                ]
                if stop_reason is not None:
                    tokens = self._with_flushed_text(tokens, detokenizer)
                visible, hit_stop = holdback.feed(tokens)
                if hit_stop:
                    stop_reason = StopReason.STOP_STRING
                elif stop_reason is not None:
                    visible += holdback.flush()
                rejected = tuple(
                    RejectedToken(token, self._piece_text(token)) for token in draft[n_accepted:]
                )
                if visible or rejected or draft:
                    if not ttft_ms and visible:
                        ttft_ms = (time.perf_counter() - started) * 1000
                    yield StepEvent(
                        tuple(visible), rejected, len(draft), n_accepted, draft_ms, verify_ms
                    )
        finally:
            sampler.close()

        if stop_reason in (StopReason.CANCELLED, StopReason.CONTEXT_FULL):
            leftover = holdback.flush()
            tail = detokenizer.flush()
            if tail and leftover:
                last = leftover[-1]
                leftover[-1] = replace(last, text=last.text + tail)
            if leftover:
                yield StepEvent(tuple(leftover), (), 0, 0, 0.0, 0.0)
        finished = time.perf_counter()
        assert stop_reason is not None
        stats = GenerationStats(
            n_prompt=len(prompt),
            n_prompt_reused=reused,
            prompt_ms=(prompt_done - started) * 1000,
            n_predict=n_emitted,
            decode_ms=(finished - prompt_done) * 1000,
            ttft_ms=ttft_ms,
            n_steps=totals.n_steps,
            n_drafted=totals.n_drafted,
            n_accept=totals.n_accept,
            draft_ms=totals.draft_ms,
            verify_ms=totals.verify_ms,
            accepted_length_histogram=tuple(histogram),
            draft_source=(
                DraftSource.NONE.value if isinstance(drafter, NoDrafter) else drafting.source.value
            ),
            draft_max=drafting.n_max,
            seed=sampler.seed,
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

    def _piece_text(self, token: int) -> str:
        return self.target.token_bytes(token).decode("utf-8", errors="replace")
