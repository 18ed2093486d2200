"""A weak draft for the demo pair: the F32 target with Gaussian noise on its weights,
quantised to Q8_0 like the demo draft.

It shares the target's vocabulary and architecture but agrees with it much less
often than the demo draft, which is what the guard and the tuner must cope with
(a long fixed draft loses on it). Used by tests/benchmarks/tune_bench.py and by
``specchat-cli bench -md`` runs for issue 13's weak-draft numbers.

Run as a script to build it: ``python -m tests.support.weak_draft [--noise 0.05]``
prints the path.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import numpy as np
from gguf import GGUFReader
from gguf.constants import GGMLQuantizationType

from core.demo_models import DemoPair, ensure_demo_pair, write_q8_draft

DEFAULT_NOISE = 0.05
NOISE_SEED = 1234


def weak_draft_path(pair: DemoPair, noise: float = DEFAULT_NOISE) -> Path:
    return pair.target.parent / f"SmolLM2-135M-Instruct.noise{round(noise * 100):02d}.Q8_0.gguf"


def _add_noise(path: Path, noise: float) -> None:
    """Every F32 weight matrix gets noise of ``noise`` times its own standard deviation."""
    rng = np.random.default_rng(NOISE_SEED)
    reader = GGUFReader(path, "r+")
    for tensor in reader.tensors:
        # Norm weights (1-D) stay: noise there rescales whole layers, not single weights.
        if tensor.tensor_type != GGMLQuantizationType.F32 or len(tensor.shape) < 2:
            continue
        data = tensor.data
        scale = float(np.std(data)) * noise
        data += rng.normal(0.0, scale, size=data.shape).astype(np.float32)
    reader.data.flush()


def ensure_weak_draft(pair: DemoPair | None = None, noise: float = DEFAULT_NOISE) -> Path:
    """The weak draft next to the demo pair, built on first use (about 10 s)."""
    pair = pair or ensure_demo_pair()
    destination = weak_draft_path(pair, noise)
    if destination.exists():
        return destination
    # Names of this process only: another session may build the same file at once.
    noisy = destination.with_suffix(f".noisy-f32.{os.getpid()}.part")
    # write_q8_draft writes next to this through a ".part" file of the same stem.
    written = destination.with_suffix(f".{os.getpid()}.gguf")
    try:
        shutil.copyfile(pair.target, noisy)
        _add_noise(noisy, noise)
        write_q8_draft(noisy, written)
        os.replace(written, destination)
    finally:
        noisy.unlink(missing_ok=True)
        written.unlink(missing_ok=True)
    return destination


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--noise", type=float, default=DEFAULT_NOISE)
    parser.add_argument("--models", type=Path, help="folder of the demo pair")
    args = parser.parse_args()
    pair = ensure_demo_pair(args.models) if args.models else ensure_demo_pair()
    print(ensure_weak_draft(pair, args.noise))


if __name__ == "__main__":
    main()
