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
Prints one line per k, then the row of the README's table (markdown), and with
``--json`` the numbers as one JSON object. The measuring is the tuner's own
(core/tune/cost_curve.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

# Run as a script too (python tests/benchmarks/verify_cost_curve.py): the repository
# root, for core/ and tests/.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.engine import ModelConfig
from core.engine.backend import backend_devices
from core.engine.model import LoadedModel
from core.tune.cost_curve import measure_decode_ms
from tests.benchmarks.random_llama_gguf import SHAPES, write_random_llama

# The columns of the README's tables.
README_KS = (1, 2, 4, 8, 9, 16, 17)


def markdown_row(label: str, curve: dict[int, float]) -> str:
    """One row of the README's table: V(k)/V(1) at ``README_KS``, V(1) in ms."""
    cells = [f"1.00 ({curve[1]:.2f} ms)"]
    cells += [f"{curve[k] / curve[1]:.2f}" for k in README_KS[1:] if k in curve]
    return f"| {label}: V(k)/V(1) | " + " | ".join(cells) + " |"


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
    parser.add_argument("--label", help="the model's name in the markdown row")
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
        curve = measure_decode_ms(model, args.max_k, args.repeats, args.context)
    finally:
        model.close()
    base = curve[1]
    print(f"{'k':>3} {'ms':>9} {'x k=1':>7} {'ms/token':>9}")
    for k, ms in curve.items():
        print(f"{k:>3} {ms:>9.2f} {ms / base:>7.2f} {ms / k:>9.2f}")
    label = args.label or f"{path.stem} on {devices}"
    print(f"| k (tokens in the batch) | {' | '.join(str(k) for k in README_KS if k in curve)} |")
    print("|---" * (1 + sum(k in curve for k in README_KS)) + "|")
    print(markdown_row(label, curve))
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
