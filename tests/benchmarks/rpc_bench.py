"""What does spreading the target over RPC workers cost? A benchmark script, not a test.

Decode tokens/s of the demo pair with the target on this machine against the
target split over RPC workers on loopback ports (``specchat-cli rpc-server``
children), plain and speculative (the draft stays local), greedy so every
configuration produces the same tokens. Configurations alternate round by round,
so a busy moment on a shared machine hurts them alike; the ratios are the result.

Loopback hides the network: this measures the RPC protocol's own overhead per
decode (serialising the graph, one round trip per worker per batch), which a LAN
adds its latency to. Speculation pays more there than locally: one verification
batch costs about one round trip, however many draft tokens it checks.

Usage::

    python tests/benchmarks/rpc_bench.py [--workers 2] [--worker-threads 1]
        [--threads 2] [--n-predict 128] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))
from tests.support.bench_home import temporary_home  # noqa: E402

_HOME = temporary_home("specchat-rpc-bench-")

from core.demo_models import ensure_demo_pair  # noqa: E402
from core.engine import (  # noqa: E402
    ChatMessage,
    DraftSettings,
    DraftSource,
    GenerationSettings,
    ModelConfig,
    SamplingSettings,
    SpeculativeEngine,
    collect,
)
from core.rpc.native import require_rpc  # noqa: E402
from tests.support.rpc_workers import running_workers  # noqa: E402

PROMPTS = (
    "Write a short story about a robot who learns to paint.",
    "Explain how a bicycle works to a ten year old.",
)
MODES = {
    "plain": DraftSettings(source=DraftSource.NONE),
    "speculative": DraftSettings(n_max=8, adaptive=False),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-threads", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="threads of the local engine")
    parser.add_argument("-n", "--n-predict", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    require_rpc()
    models = os.environ.get("SPECCHAT_TEST_MODELS")
    pair = ensure_demo_pair(Path(models)) if models else ensure_demo_pair()
    greedy = SamplingSettings(temperature=0.0)
    folder = Path(_HOME.name)
    with running_workers(folder, args.workers, args.worker_threads) as workers:
        endpoints = tuple(worker.endpoint for worker in workers)
        draft = ModelConfig(pair.draft, n_threads=args.threads)
        configs = {
            "local": ModelConfig(pair.target, n_ctx=1024, n_threads=args.threads),
            f"{len(endpoints)} workers": ModelConfig(
                pair.target, n_ctx=1024, n_threads=args.threads, rpc_servers=endpoints
            ),
        }
        engines = {name: SpeculativeEngine(target, draft) for name, target in configs.items()}
        speeds: dict[tuple[str, str], list[float]] = {}
        answers: dict[tuple[str, str, int], list[int]] = {}
        try:
            for engine in engines.values():  # warm-up: allocation, page faults
                prompt = engine.tokenize_chat([ChatMessage("user", PROMPTS[0])])
                collect(engine.generate(prompt, GenerationSettings(n_predict=8, sampling=greedy)))
            for round_index in range(args.rounds):
                for prompt_index, text in enumerate(PROMPTS):
                    for name, engine in engines.items():
                        prompt = engine.tokenize_chat([ChatMessage("user", text)])
                        for mode, drafting in MODES.items():
                            settings = GenerationSettings(
                                n_predict=args.n_predict, sampling=greedy, drafting=drafting
                            )
                            result = collect(engine.generate(prompt, settings))
                            speed = result.stats.decode_tokens_per_second
                            speeds.setdefault((name, mode), []).append(speed)
                            answers.setdefault((name, mode, prompt_index), result.token_ids)
                print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr)
        finally:
            for engine in engines.values():
                engine.close()
    print(
        f"demo pair, target {pair.target.name}, n={args.n_predict}, {args.rounds} rounds x "
        f"{len(PROMPTS)} prompts; local threads {args.threads}, {args.workers} loopback "
        f"workers x {args.worker_threads} threads\n"
    )
    base = statistics.median(speeds[("local", "plain")])
    print(f"{'target on':<12} {'mode':<12} {'tokens/s':>9} {'vs local plain':>15} same answer")
    for (name, mode), values in speeds.items():
        median = statistics.median(values)
        same = all(
            answers[(name, mode, index)] == answers[("local", "plain", index)]
            for index in range(len(PROMPTS))
        )
        print(f"{name:<12} {mode:<12} {median:>9.1f} {median / base:>14.2f}x {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
