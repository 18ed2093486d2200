"""Tokens/s beside other busy programs, with and without fewer decode threads.

Starts 0, 1 and 2 busy processes (``while True: pass``, normal priority) a couple
of seconds before each answer, as a build or another heavy program would already
be running, and measures the demo pair's answer with the engine's thread count
following the machine (core/engine/cpu_contention.py) and with it fixed at the
loaded count. (Under ``nice`` the busy processes would inherit the niceness: the
window's engine process, below normal priority beside normal programs, is measured
by starting EngineWorker(below_normal_priority=True) instead.)

    python tests/benchmarks/contended_cpu_bench.py [-n 96] [--lead-s 2] [--busy 0 1 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.demo_models import ensure_demo_pair
from core.engine import (
    GenerationSettings,
    ModelConfig,
    SamplingSettings,
    SpeculativeEngine,
    StepEvent,
)
from core.engine.chat_template import ChatMessage
from core.engine.config import default_threads
from core.engine.cpu_contention import OtherProgramsCpu

PROMPT = "Write a short story about a robot who learns to paint."


def answer(engine: SpeculativeEngine, prompt: list[int], n_predict: int) -> tuple[float, float]:
    """(tokens/s over the whole answer, seconds to the first token)."""
    settings = GenerationSettings(n_predict=n_predict, sampling=SamplingSettings(temperature=0.0))
    engine.target.reset()
    if engine.draft is not None:
        engine.draft.reset()
    started = time.perf_counter()
    first: float | None = None
    count = 0
    for event in engine.generate(prompt, settings):
        if isinstance(event, StepEvent) and event.tokens:
            first = first or time.perf_counter()
            count += len(event.tokens)
    wall = time.perf_counter() - started
    return count / wall, (first or started) - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--n-predict", type=int, default=96)
    parser.add_argument("--lead-s", type=float, default=2.0, help="busy this long before")
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    pair = ensure_demo_pair()
    threads = default_threads()
    engine = SpeculativeEngine(
        ModelConfig(pair.target, n_threads=threads), ModelConfig(pair.draft, n_threads=threads)
    )
    following = engine._other_programs
    fixed = OtherProgramsCpu(Path("/nonexistent/stat"))  # cannot look: the count stays put
    print(f"demo pair, {threads} threads loaded, n={args.n_predict}, greedy")
    try:
        prompt = engine.tokenize_chat([ChatMessage("user", PROMPT)])
        answer(engine, prompt, 16)  # warm-up
        for busy in args.busy:
            for mode, usage in (("following the machine", following), ("fixed", fixed)):
                engine.target.set_decode_threads(threads)
                if engine.draft is not None:
                    engine.draft.set_decode_threads(threads)
                engine._other_programs = usage
                burners = [
                    subprocess.Popen([sys.executable, "-c", "while True: pass"])
                    for _ in range(busy)
                ]
                try:
                    time.sleep(args.lead_s)
                    rate, ttft = answer(engine, prompt, args.n_predict)
                finally:
                    for burner in burners:
                        burner.kill()
                        burner.wait()
                print(
                    f"{busy} busy, threads {mode:22s} {rate:6.1f} t/s, first token "
                    f"{ttft:5.2f} s, decoding with {engine.target.decode_threads} thread(s)"
                )
    finally:
        engine._other_programs = following  # the one close() stops
        engine.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
