"""Record the llama.cpp calls an answer makes on its caches, and replay them back to back.

The replay decodes exactly the batches the engine decoded (same contexts, tokens,
positions, output rows, cache trims, in the same order), waiting for each decode's
results as the engine must, with nothing else in between. Its wall time is what
the answer would take if the engine's own work cost nothing; the difference to the
answer's wall time is the engine's overhead, including whatever of that work
overlaps a decode running on a GPU (which then costs nothing).

Record and replay from the same cache state: clear both caches before the recorded
answer; the replay clears them first too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import llama_cpp


@dataclass
class RecordedCalls:
    """``calls`` holds ("decode", ctx, tokens, positions, outputs) and
    ("seq_rm", memory, seq, p0, p1) in call order."""

    calls: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def n_decodes(self) -> int:
        return sum(1 for call in self.calls if call[0] == "decode")


@contextmanager
def recording() -> Iterator[RecordedCalls]:
    """Record llama_decode and llama_memory_seq_rm calls made through the module
    (core.engine.model calls both as ``llama_cpp.NAME``)."""
    recorded = RecordedCalls()
    decode: Callable[..., int] = llama_cpp.llama_decode
    seq_rm: Callable[..., bool] = llama_cpp.llama_memory_seq_rm

    def recorded_decode(ctx: Any, batch: Any) -> int:
        n = batch.n_tokens
        recorded.calls.append(
            (
                "decode",
                ctx,
                [batch.token[i] for i in range(n)],
                [batch.pos[i] for i in range(n)],
                [batch.logits[i] for i in range(n)],
            )
        )
        return decode(ctx, batch)

    def recorded_seq_rm(memory: Any, seq: int, p0: int, p1: int) -> bool:
        recorded.calls.append(("seq_rm", memory, seq, p0, p1))
        return seq_rm(memory, seq, p0, p1)

    llama_cpp.llama_decode = recorded_decode
    llama_cpp.llama_memory_seq_rm = recorded_seq_rm
    try:
        yield recorded
    finally:
        llama_cpp.llama_decode = decode
        llama_cpp.llama_memory_seq_rm = seq_rm


def replay_seconds(recorded: RecordedCalls, memories: list[Any]) -> float:
    """Wall time of the recorded calls replayed back to back, after clearing
    ``memories`` (the caches the recorded answer started from empty)."""
    # Batches are built before the clock starts, so the replay pays only for calls.
    steps: list[Callable[[], object]] = []
    batches: list[Any] = []
    for call in recorded.calls:
        if call[0] == "decode":
            _, ctx, tokens, positions, outputs = call
            batch = llama_cpp.llama_batch_init(len(tokens), 0, 1)
            batches.append(batch)
            for i, (token, position, output) in enumerate(
                zip(tokens, positions, outputs, strict=True)
            ):
                batch.token[i] = token
                batch.pos[i] = position
                batch.logits[i] = output
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
            batch.n_tokens = len(tokens)
            steps.append(_decode_and_wait(ctx, batch, any(outputs)))
        else:
            _, memory, seq, p0, p1 = call
            steps.append(
                lambda m=memory, s=seq, a=p0, b=p1: llama_cpp.llama_memory_seq_rm(m, s, a, b)
            )
    try:
        for memory in memories:
            llama_cpp.llama_memory_clear(memory, True)
        started = time.perf_counter()
        for step in steps:
            step()
        return time.perf_counter() - started
    finally:
        for batch in batches:
            llama_cpp.llama_batch_free(batch)


def _decode_and_wait(ctx: Any, batch: Any, has_outputs: bool) -> Callable[[], object]:
    def run() -> object:
        status = llama_cpp.llama_decode(ctx, batch)
        if status != 0:
            raise RuntimeError(f"replayed llama_decode returned {status}")
        if has_outputs:
            # The engine reads every decode's output rows before its next call.
            llama_cpp.llama_synchronize(ctx)
        return status

    return run
