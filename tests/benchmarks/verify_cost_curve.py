"""The verification cost curve: time to decode a batch of k tokens, k = 1 … 17.

Speculation pays when a step that verifies k draft tokens (a batch of k + 1) costs
less than the tokens it is expected to emit would cost one at a time. This measures
the cost side: the median time of one decode of k tokens with every output row's
logits (as verification asks), after a prompt of ``--context`` tokens, relative to
k = 1. The rows are measured interleaved (k = 1 … 17, repeated), so a slow moment
of the machine hurts every k alike.

    python tests/benchmarks/verify_cost_curve.py MODEL.gguf [-ngl 99] [--repeats 5]
    python tests/benchmarks/verify_cost_curve.py --random-shape 8b [-ngl 99]

``--random-shape`` first writes a Llama-shaped GGUF with random Q4_0 weights
(tests/benchmarks/random_llama_gguf.py) to ``--random-path``: only timing matters.
Prints one line per k and, with ``--json``, the numbers as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import llama_cpp
import numpy as np

from core.engine import ModelConfig
from core.engine.backend import backend_devices
from core.engine.model import LoadedModel
from tests.benchmarks.random_llama_gguf import SHAPES, write_random_llama


def _decode_ms(model: LoadedModel, tokens: list[int], context_length: int) -> float:
    """One decode of ``tokens`` at position ``context_length``, waiting for the device."""
    started = time.perf_counter()
    model.append(tokens, all_logits=True)
    # GPU decodes are asynchronous; verification reads the logits at once, so the
    # cost includes waiting for them.
    llama_cpp.llama_synchronize(model.context)
    elapsed = (time.perf_counter() - started) * 1000
    model.forget_from(context_length)
    return elapsed


def measure_curve(
    model: LoadedModel, max_k: int, repeats: int, context: int, seed: int = 0
) -> dict[int, float]:
    """Median decode time in ms per batch size k, after a ``context``-token prompt."""
    rng = np.random.default_rng(seed)
    # Skip the first ids (control and byte tokens); any token id times the same.
    low = min(300, model.n_vocab // 2)
    prompt = [int(t) for t in rng.integers(low, model.n_vocab, context)]
    model.prefill(prompt)
    batch = [int(t) for t in rng.integers(low, model.n_vocab, max_k)]
    for k in (1, max_k):  # warm-up: graph allocation for both ends of the range
        _decode_ms(model, batch[:k], context)
    times: dict[int, list[float]] = {k: [] for k in range(1, max_k + 1)}
    for _ in range(repeats):
        for k in times:
            times[k].append(_decode_ms(model, batch[:k], context))
    return {k: statistics.median(values) for k, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", type=Path)
    parser.add_argument("--random-shape", choices=sorted(SHAPES))
    parser.add_argument("--random-path", type=Path, default=Path("/tmp/random-llama.gguf"))
    parser.add_argument("-ngl", "--gpu-layers", type=int, default=-1)
    parser.add_argument("-t", "--threads", type=int, default=None)
    parser.add_argument("--max-k", type=int, default=17)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--context", type=int, default=128, help="tokens already in the cache")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    path = args.model
    if args.random_shape:
        started = time.perf_counter()
        path = write_random_llama(args.random_path, SHAPES[args.random_shape])
        print(f"wrote random {args.random_shape} model in {time.perf_counter() - started:.1f} s")
    if path is None:
        parser.error("give a MODEL or --random-shape")
    config = ModelConfig(
        path,
        n_gpu_layers=args.gpu_layers,
        n_ctx=args.context + args.max_k + 16,
        **({"n_threads": args.threads} if args.threads else {}),
    )
    started = time.perf_counter()
    model = LoadedModel(config)
    load_s = time.perf_counter() - started
    devices = ", ".join(d.description for d in backend_devices() if d.kind != "cpu") or "CPU"
    print(
        f"{path.name}: {model.n_gpu_layers} GPU layers requested, on {devices}, "
        f"{config.n_threads} threads, loaded in {load_s:.1f} s"
    )
    try:
        curve = measure_curve(model, args.max_k, args.repeats, args.context)
    finally:
        model.close()
    base = curve[1]
    print(f"{'k':>3} {'ms':>9} {'x k=1':>7} {'ms/token':>9}")
    for k, ms in curve.items():
        print(f"{k:>3} {ms:>9.2f} {ms / base:>7.2f} {ms / k:>9.2f}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "model": path.name,
                    "devices": devices,
                    "gpu_layers": model.n_gpu_layers,
                    "context": args.context,
                    "repeats": args.repeats,
                    "ms": {str(k): ms for k, ms in curve.items()},
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
