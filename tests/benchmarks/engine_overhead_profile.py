"""Where the engine's own time goes between decodes, per speculative step.

Runs a greedy answer with a timer around ``llama_decode`` that waits for the device
(as ``llama_cpp_parity.py`` does) and splits the rest of each step's wall time:

* draft loop: choosing each drafted token (argmax, its softmax probability, the
  batch), outside the draft's decodes;
* catch-up: starting the next draft's first decode after a step;
* verification: picking the target's tokens from its output rows;
* reporting: the rest (events, detokenising, the draft-length guard, the consumer).

Then times the draft loop's pieces right after a draft decode, when the CPU's
caches hold what llama.cpp touched rather than what Python did:

    python tests/benchmarks/engine_overhead_profile.py TARGET DRAFT [-ngl 99] [-n 256]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import llama_cpp

from core.engine import (
    DraftSettings,
    GenerationSettings,
    SamplingSettings,
    SpeculativeEngine,
    collect,
    drafting,
    verification,
)
from core.engine.config import default_threads
from core.engine.distribution import ChosenTokenProbability

# Appended, not prepended: a PYTHONPATH entry holding another core/ (an A/B
# against an older engine) must win over this checkout's.
sys.path.append(str(Path(__file__).resolve().parents[2]))
from tests.benchmarks.llama_cpp_parity import PROMPT, decode_timer, open_pair


class PhaseClock:
    """Own time (wall time minus the decodes inside) of wrapped methods, by phase."""

    def __init__(self, decodes: list[float]) -> None:
        self._decodes = decodes
        self.own: Counter[str] = Counter()

    def wrap(self, owner: Any, name: str, phase: str) -> Callable[[], None]:
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            decoded_before = self._decodes[0]
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                self.own[phase] += elapsed - (self._decodes[0] - decoded_before)

        setattr(owner, name, timed)
        return lambda: setattr(owner, name, original)


def profile_steps(
    engine: SpeculativeEngine, prompt: list[int], settings: GenerationSettings
) -> None:
    with decode_timer() as decodes:
        clock = PhaseClock(decodes)
        restore = [
            clock.wrap(drafting.ModelDrafter, "propose", "draft loop"),
            clock.wrap(drafting.ModelDrafter, "catch_up", "catch-up"),
            clock.wrap(verification.MatchVerifier, "verify", "verification"),
        ]
        try:
            started = time.perf_counter()
            stats = collect(engine.generate(prompt, settings)).stats
            wall = time.perf_counter() - started
        finally:
            for undo in restore:
                undo()
    steps = max(stats.n_steps, 1)
    outside = wall - decodes[0]
    reporting = outside - sum(clock.own.values())
    print(
        f"{stats.n_steps} steps, {stats.n_drafted} drafted, {stats.n_predict} tokens; "
        f"per step: wall {wall * 1000 / steps:.3f} ms, decodes {decodes[0] * 1000 / steps:.3f} ms, "
        f"outside {outside * 1000 / steps:.3f} ms ({outside / wall:.1%})"
    )
    for phase, seconds in [*clock.own.items(), ("reporting and the rest", reporting)]:
        print(f"  {phase:24s} {seconds * 1000 / steps:7.3f} ms per step")
    per_token = clock.own["draft loop"] / max(stats.n_drafted, 1)
    print(f"  draft loop per drafted token: {per_token * 1e6:.1f} us")


def cold_costs(engine: SpeculativeEngine, prompt: list[int], repeats: int) -> None:
    """Each piece of choosing a drafted token, timed right after a draft decode."""
    model = engine.draft
    assert model is not None
    probability = ChosenTokenProbability(model.n_vocab)
    spent: dict[str, list[float]] = {"logits view": [], "argmax": [], "capture": [], "result": []}
    model.prefill(prompt)
    token = prompt[-1]
    for _ in range(repeats):
        model.append([token])
        llama_cpp.llama_synchronize(model.context)
        t0 = time.perf_counter()
        logits = model.logits(-1)
        t1 = time.perf_counter()
        token = int(logits.argmax())
        t2 = time.perf_counter()
        probability.capture(logits, token)
        t3 = time.perf_counter()
        probability.result()
        t4 = time.perf_counter()
        for name, seconds in zip(spent, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            spent[name].append(seconds)
        if len(model.cached_tokens) + 2 >= model.n_ctx:
            model.prefill(prompt)
    print(
        "after a draft decode (median us): "
        + ", ".join(
            f"{name} {statistics.median(values) * 1e6:.1f}" for name, values in spent.items()
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", type=Path)
    parser.add_argument("draft", type=Path)
    parser.add_argument("-ngl", "--gpu-layers", type=int, default=99)
    parser.add_argument("-t", "--threads", type=int, default=None)
    parser.add_argument("-n", "--n-predict", type=int, default=256)
    parser.add_argument("--draft-max", type=int, default=8)
    parser.add_argument("--adaptive", action="store_true", help="the guard picks lengths")
    args = parser.parse_args(argv)
    threads = args.threads or default_threads()
    engine = open_pair(args.target, args.draft, args.gpu_layers, threads)
    settings = GenerationSettings(
        n_predict=args.n_predict,
        sampling=SamplingSettings(temperature=0.0),
        drafting=DraftSettings(n_max=args.draft_max, adaptive=args.adaptive),
    )
    try:
        prompt = engine.tokenize(PROMPT)
        collect(engine.generate(prompt, settings))  # warm-up: graphs, caches
        print(
            f"draft-max {args.draft_max} ({'adaptive' if args.adaptive else 'fixed'}), "
            f"ngl {args.gpu_layers}, threads {engine.target.n_threads}"
        )
        profile_steps(engine, prompt, settings)
        cold_costs(engine, prompt, repeats=200)
    finally:
        engine.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
