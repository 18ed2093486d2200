"""Typed settings of the engine: per-model loading, drafting and sampling.

Names and meanings follow llama.cpp's flags so numbers from its tools carry over.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.rpc.endpoints import parse_endpoints, parse_tensor_split

DEFAULT_CONTEXT = 4096
DEFAULT_BATCH = 512


def default_threads() -> int:
    """Cores this process may use; llama.cpp slows down past the physical core count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ModelConfig:
    """How to load one GGUF model.

    Attributes:
        path: the GGUF file.
        n_gpu_layers: layers to offload; -1 offloads all where a GPU backend exists.
        n_ctx: context size in tokens; 0 means the model's training context, capped
            at ``DEFAULT_CONTEXT`` to keep memory modest.
        n_batch: most tokens per decode call. A bigger batch aborts llama.cpp, so the
            engine splits prompts and caps drafts to fit.
        n_threads: CPU threads for decoding and prompt processing. A model whose
            every layer sits on a GPU or RPC worker uses one: its CPU share is
            feeding the graph, and more threads only cost each decode time.
        weight_repack: llama.cpp's CPU weight repacking (``--repack``). Off by
            default: on CPUs advertising AMX it kills the process on the first decode
            of some quantisations, and losing a user's session is worse than the few
            percent it gains.
        rpc_servers: llama.cpp RPC workers (``host:port``) that hold part of this
            model's layers, as llama.cpp's ``--rpc``; the offloaded layers (see
            ``n_gpu_layers``) are spread over them and the local GPUs, the rest stay
            on the local CPU. Give them to the target only: the draft stays local.
        tensor_split: proportions of the offloaded layers per device, in the order
            RPC workers (as listed), then local GPUs; llama.cpp's ``--tensor-split``.
            Empty: by each device's free memory.
    """

    path: Path
    n_gpu_layers: int = -1
    n_ctx: int = 0
    n_batch: int = DEFAULT_BATCH
    n_threads: int = field(default_factory=default_threads)
    weight_repack: bool = False
    rpc_servers: tuple[str, ...] = ()
    tensor_split: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        # Lists arrive from JSON (the engine process, saved settings).
        object.__setattr__(self, "rpc_servers", parse_endpoints(self.rpc_servers))
        object.__setattr__(self, "tensor_split", parse_tensor_split(self.tensor_split))
        if self.n_ctx < 0:
            raise ConfigError(f"context size must be >= 0, got {self.n_ctx}")
        if self.n_gpu_layers < -1:
            raise ConfigError(
                f"GPU layers must be -1 (all that fit) or >= 0, got {self.n_gpu_layers}"
            )
        if self.n_batch < 1:
            raise ConfigError(f"batch size must be >= 1, got {self.n_batch}")
        if self.n_threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.n_threads}")


class DraftSource(StrEnum):
    MODEL = "model"
    NGRAM = "ngram"
    NONE = "none"


class Verification(StrEnum):
    """How drafts are checked at temperature > 0 (greedy answers always match).

    SPECULATIVE: speculative sampling; the draft samples from the same sampler chain
        as the target and each token is kept with probability min(1, p/q). Every
        token is an exact sample of the target's distribution and far more drafts
        are kept than with MATCH, but the answer for a seed depends on the drafts.
    MATCH: llama.cpp's sample-and-match; the draft proposes its argmax and it is
        kept only where the target's own sample equals it. Also exact, and the same
        seed gives the same answer with and without speculation.
    """

    SPECULATIVE = "speculative"
    MATCH = "match"


@dataclass(frozen=True)
class DraftSettings:
    """llama.cpp's ``--spec-draft-n-max/-n-min/-p-min`` plus the draft source.

    Attributes:
        source: draft model, n-gram prompt lookup, or none (plain decoding).
        n_max: most tokens drafted per step. 16 by default: on the demo pair
            (2 CPU cores) it beat 8 by 5-10% in each of three benchmark runs, since
            each verification batch is then shared by more accepted tokens; LM
            Studio defaults to 16 as well.
        n_min: drafts shorter than this are not verified (the step decodes plainly).
        p_min: stop drafting when the draft's top probability, renormalised over its
            top 10 candidates, falls below this.
        ngram_max / ngram_min: n-gram sizes tried by prompt lookup, longest first.
        verification: speculative sampling or sample-and-match at temperature > 0
            (see ``Verification``).
        adaptive: choose each step's draft length (at most ``n_max``) from the
            acceptance and the step times measured in this answer, and stop drafting
            (probing again now and then) while speculation would be slower than plain
            decoding. Off: every step drafts up to ``n_max``.
    """

    source: DraftSource = DraftSource.MODEL
    n_max: int = 16
    n_min: int = 0
    p_min: float = 0.0
    ngram_max: int = 3
    ngram_min: int = 1
    verification: Verification = Verification.SPECULATIVE
    adaptive: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", DraftSource(self.source))
        try:
            object.__setattr__(self, "verification", Verification(self.verification))
        except ValueError:
            raise ConfigError(
                f"unknown verification {self.verification!r}; "
                f"known: {', '.join(v.value for v in Verification)}"
            ) from None
        if self.n_max < 0:
            raise ConfigError(f"draft-max must be >= 0, got {self.n_max}")
        if self.n_min < 0 or self.n_min > max(self.n_max, 0):
            raise ConfigError(f"draft-min must be between 0 and draft-max, got {self.n_min}")
        if not 0.0 <= self.p_min <= 1.0:
            raise ConfigError(f"draft-p-min must be between 0 and 1, got {self.p_min}")
        if not 1 <= self.ngram_min <= self.ngram_max:
            raise ConfigError("n-gram sizes need 1 <= ngram-min <= ngram-max")


# ``--draft-max auto``: the adaptive draft length (``DraftSettings.adaptive``) with
# this ceiling. The controller picks each step's length below it from the
# acceptance and timings of the answer so far; 16 is the fixed length that measured
# best on the demo pair, and lengths past it gained nothing there.
AUTO_DRAFT_MAX = 16
AUTO = "auto"


def parse_draft_max(text: str) -> tuple[int, bool | None]:
    """A ``--draft-max`` value: "auto" -> (AUTO_DRAFT_MAX, adaptive on), "N" -> (N, None:
    the adaptive flag decides). ConfigError for anything else."""
    if text.strip().lower() == AUTO:
        return AUTO_DRAFT_MAX, True
    try:
        return int(text), None
    except ValueError:
        raise ConfigError(f"draft-max must be a whole number or 'auto', got {text!r}") from None


# llama.cpp's --sampling-seq letters we implement, in its default order.
SAMPLER_LETTERS = {"k": "top_k", "y": "typical_p", "p": "top_p", "m": "min_p", "t": "temperature"}
DEFAULT_SAMPLING_SEQUENCE = "kypmt"
RANDOM_SEED = -1
# llama.cpp's samplers take a 32-bit seed and treat 0xFFFFFFFF (LLAMA_DEFAULT_SEED) as
# "pick one at random", so a reproducible seed is below it.
MAX_SEED = 0xFFFFFFFE


@dataclass(frozen=True)
class SamplingSettings:
    """How the target's next token is chosen. Temperature <= 0 is greedy."""

    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    typical_p: float = 1.0
    repeat_penalty: float = 1.0
    repeat_last_n: int = 64
    seed: int = RANDOM_SEED
    sequence: str = DEFAULT_SAMPLING_SEQUENCE

    def __post_init__(self) -> None:
        for name in ("temperature", "top_p", "min_p", "typical_p", "repeat_penalty"):
            value = getattr(self, name)
            # NaN passes every "< x" check and reaches llama.cpp as garbage logits.
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ConfigError(f"{name.replace('_', '-')} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ConfigError(f"{name.replace('_', '-')} must be a finite number, got {value}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise ConfigError(f"seed must be an integer, got {self.seed!r}")
        if self.seed != RANDOM_SEED and not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(
                f"seed must be between 0 and {MAX_SEED}, or {RANDOM_SEED} for a random one; "
                f"got {self.seed}"
            )
        unknown = set(self.sequence) - set(SAMPLER_LETTERS)
        if unknown:
            raise ConfigError(
                f"unknown sampler letters {''.join(sorted(unknown))!r} in sampling sequence; "
                f"known: {', '.join(f'{k}={v}' for k, v in SAMPLER_LETTERS.items())}"
            )
        if self.top_k < 0:
            raise ConfigError("top-k must be >= 0")
        if not 0.0 <= self.top_p <= 1.0 or not 0.0 <= self.min_p <= 1.0:
            raise ConfigError("top-p and min-p must be between 0 and 1")
        if not 0.0 < self.typical_p <= 1.0:
            raise ConfigError(f"typical-p must be above 0 and at most 1, got {self.typical_p}")
        if self.repeat_penalty <= 0:
            raise ConfigError("repeat penalty must be > 0")
        if self.repeat_last_n < -1:
            raise ConfigError(
                f"repeat-last-n must be -1 (the whole context), 0 (off) or more, "
                f"got {self.repeat_last_n}"
            )

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass(frozen=True)
class GenerationSettings:
    """Everything one answer needs besides the prompt."""

    n_predict: int = 256
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    drafting: DraftSettings = field(default_factory=DraftSettings)
    stop_strings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # A plain string is a sequence of strings too: it would become one stop per
        # character and end the answer at its first letter.
        if isinstance(self.stop_strings, str | bytes):
            raise ConfigError(
                f"stop_strings must be a sequence of strings, not one string; "
                f"write stop_strings=({self.stop_strings!r},)"
            )
        stops = tuple(self.stop_strings)
        for stop in stops:
            if not isinstance(stop, str):
                raise ConfigError(f"each stop string must be a str, got {stop!r}")
        object.__setattr__(self, "stop_strings", stops)
        if isinstance(self.n_predict, bool) or not isinstance(self.n_predict, numbers.Integral):
            raise ConfigError(f"n_predict must be an integer, got {self.n_predict!r}")
        if self.n_predict < -1:
            raise ConfigError(
                f"n-predict must be -1 (until the model ends its answer) or >= 0, "
                f"got {self.n_predict}"
            )

    def with_changes(self, **changes: Any) -> GenerationSettings:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
