"""The verification cost curve of a loaded pair, and the speed-up it predicts.

A step that drafts k tokens costs k draft decodes plus one target decode of a
batch of k + 1 tokens, and emits the accepted prefix plus one target token. With
the target's batch cost V(n), the draft's cost c per token and a per-token
acceptance α, the expected speed-up over plain decoding (one V(1) per token) is

    speed-up(k) = (1 + α + α² + … + α^k) · V(1) / (k · c + V(k + 1))

``measure_pair_curve`` measures V(1 … max_k) on the loaded target and c on the
draft (the median of interleaved repeats, each batch rolled back);
core/tune/prediction.py reads α off a sweep, so a sweep plus the curve predicts
every draft length, measured or not.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import ConfigError

if TYPE_CHECKING:
    # The window imports CostCurve (through the engine client) and must not load
    # llama.cpp for it: only the measuring runs in the engine process.
    from core.engine import SpeculativeEngine
    from core.engine.model import LoadedModel

# k = 1 … 17 covers draft lengths up to 16, the largest the tuner sweeps by default.
DEFAULT_MAX_K = 17
DEFAULT_REPEATS = 5
DEFAULT_CONTEXT = 64
# The tuner measures the curve before a sweep; on a big target on a CPU one pass over
# k = 1 … 17 takes a minute, so later repeats stop once this much time is spent.
DEFAULT_BUDGET_S = 20.0


def _decode_ms(model: LoadedModel, tokens: list[int], context_length: int) -> float:
    """One decode of ``tokens`` at position ``context_length``, waiting for the device."""
    import llama_cpp

    started = time.perf_counter()
    model.append(tokens, all_logits=True)
    # GPU decodes are asynchronous; verification reads the logits at once, so the
    # cost includes waiting for them.
    llama_cpp.llama_synchronize(model.context)
    elapsed = (time.perf_counter() - started) * 1000
    model.forget_from(context_length)
    return elapsed


def measure_decode_ms(
    model: LoadedModel,
    max_k: int,
    repeats: int,
    context: int,
    seed: int = 0,
    budget_s: float | None = None,
) -> dict[int, float]:
    """Median time in ms of one decode of k tokens (k = 1 … ``max_k``) with every row's
    logits, after a ``context``-token prompt. The rows are measured interleaved (k = 1 …
    max_k, repeated), so a slow moment of the machine hurts every k alike; with
    ``budget_s``, no further repeat starts once that much time is spent (one always
    runs). The model's cache is left empty."""
    if max_k < 1 or repeats < 1 or context < 1:
        raise ConfigError("the cost curve needs max_k, repeats and context of at least 1")
    if context + max_k > model.n_ctx:
        raise ConfigError(
            f"the cost curve needs {context + max_k} tokens of context; "
            f"{model.path.name} has {model.n_ctx}"
        )
    rng = np.random.default_rng(seed)
    # Skip the first ids (control and byte tokens); any token id times the same.
    low = min(300, model.n_vocab // 2)
    model.reset()
    try:
        prompt = [int(t) for t in rng.integers(low, model.n_vocab, context)]
        model.prefill(prompt)
        batch = [int(t) for t in rng.integers(low, model.n_vocab, max_k)]
        for k in (1, max_k):  # warm-up: graph allocation for both ends of the range
            _decode_ms(model, batch[:k], context)
        times: dict[int, list[float]] = {k: [] for k in range(1, max_k + 1)}
        started = time.perf_counter()
        for _ in range(repeats):
            for k in times:
                times[k].append(_decode_ms(model, batch[:k], context))
            if budget_s is not None and time.perf_counter() - started > budget_s:
                break
    finally:
        model.reset()
    return {k: statistics.median(values) for k, values in times.items()}


@dataclass(frozen=True)
class CostCurve:
    """V(k) in ms for k = 1 … len(target_ms) on one pair and machine, and the draft's
    cost per drafted token (0 for a pair without a draft model). ``repeats`` is the
    most asked for; a time budget may have stopped the measuring earlier."""

    target_ms: tuple[float, ...]
    draft_ms: float
    context: int
    repeats: int
    device: str = ""
    measured_at: str = ""
    # Where it was measured (core/engine/placement.py): a curve holds only there.
    placement: str = ""

    def __post_init__(self) -> None:
        if not self.target_ms or min(self.target_ms) <= 0:
            raise ConfigError("a cost curve needs a positive time for every batch size")

    @property
    def max_draft(self) -> int:
        """The longest draft the curve can price (verifying k drafts is a batch of k + 1)."""
        return len(self.target_ms) - 1

    def ratio(self, k: int) -> float:
        """V(k) / V(1)."""
        return self.target_ms[k - 1] / self.target_ms[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_ms": list(self.target_ms),
            "draft_ms": self.draft_ms,
            "context": self.context,
            "repeats": self.repeats,
            "device": self.device,
            "measured_at": self.measured_at,
            "placement": self.placement,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CostCurve:
        try:
            return cls(
                target_ms=tuple(float(v) for v in data["target_ms"]),
                draft_ms=float(data["draft_ms"]),
                context=int(data["context"]),
                repeats=int(data["repeats"]),
                device=str(data.get("device", "")),
                measured_at=str(data.get("measured_at", "")),
                placement=str(data.get("placement", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"not a saved cost curve: {exc!r} missing or invalid") from exc


def measure_pair_curve(
    engine: SpeculativeEngine,
    max_k: int = DEFAULT_MAX_K,
    repeats: int = DEFAULT_REPEATS,
    context: int = DEFAULT_CONTEXT,
    budget_s: float | None = DEFAULT_BUDGET_S,
) -> CostCurve:
    """The loaded target's curve and the draft's single-token cost (both caches are
    left empty; the engine refills them on the next answer), labelled with the
    device and placement they were measured on."""
    # Here, not at the top: the window imports this module and must not load
    # llama.cpp (only a process holding an engine measures).
    from core.engine.backend import describe_placement
    from core.engine.placement import offloaded_layers, pair_placement

    context = min(context, engine.target.n_ctx - max_k)
    target = measure_decode_ms(engine.target, max_k, repeats, context, budget_s=budget_s)
    draft_ms = 0.0
    if engine.draft is not None:
        draft_context = min(context, engine.draft.n_ctx - 1)
        draft_ms = measure_decode_ms(engine.draft, 1, repeats, draft_context, budget_s=budget_s)[1]
    return CostCurve(
        target_ms=tuple(target[k] for k in range(1, max_k + 1)),
        draft_ms=draft_ms,
        context=context,
        repeats=repeats,
        device=describe_placement(offloaded_layers(engine.target))[1],
        measured_at=time.strftime("%Y-%m-%d %H:%M:%S"),
        placement=pair_placement(engine.target, engine.draft),
    )


def expected_emitted(alpha: float, k: int) -> float:
    """Tokens a step drafting k emits on average: 1 + α + … + α^k."""
    return float(sum(alpha**i for i in range(k + 1)))


def expected_accepted(alpha: float, k: int) -> float:
    """Drafts a step of k keeps on average: α + α² + … + α^k."""
    return expected_emitted(alpha, k) - 1.0


def predicted_speedup(
    curve: CostCurve, alpha: float, k: int, draft_ms: float | None = None
) -> float:
    """Expected speed-up of draft length ``k`` over plain decoding (``draft_ms`` overrides
    the curve's draft cost, e.g. 0 for n-gram lookup)."""
    if not 1 <= k <= curve.max_draft:
        raise ConfigError(f"the cost curve prices draft lengths 1 … {curve.max_draft}, not {k}")
    cost = curve.draft_ms if draft_ms is None else draft_ms
    step = k * cost + curve.target_ms[k]
    return expected_emitted(alpha, k) * curve.target_ms[0] / step
