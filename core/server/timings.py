"""``usage`` and llama.cpp-style ``timings`` from one answer's statistics.

``timings`` has the fields llama.cpp's server reports (prompt and predicted
tokens, milliseconds and rates, ``draft_n``, ``draft_n_accepted``) plus the
speculation figures no other server reports per request: acceptance, mean
accepted length, tokens per target pass, draft and verify time.
"""

from __future__ import annotations

from typing import Any

from core.engine import GenerationStats


def usage(stats: GenerationStats) -> dict[str, int]:
    return {
        "prompt_tokens": stats.n_prompt,
        "completion_tokens": stats.n_predict,
        "total_tokens": stats.n_prompt + stats.n_predict,
    }


def _per_token_ms(ms: float, n: int) -> float:
    return ms / n if n else 0.0


def timings(stats: GenerationStats) -> dict[str, Any]:
    evaluated = stats.n_prompt - stats.n_prompt_reused
    return {
        "cache_n": stats.n_prompt_reused,
        "prompt_n": evaluated,
        "prompt_ms": stats.prompt_ms,
        "prompt_per_token_ms": _per_token_ms(stats.prompt_ms, evaluated),
        "prompt_per_second": stats.prompt_tokens_per_second,
        "predicted_n": stats.n_predict,
        "predicted_ms": stats.decode_ms,
        "predicted_per_token_ms": _per_token_ms(stats.decode_ms, stats.n_predict),
        "predicted_per_second": stats.decode_tokens_per_second,
        "draft_n": stats.n_drafted,
        "draft_n_accepted": stats.n_accept,
        "draft_acceptance": stats.acceptance,
        "draft_mean_accepted_length": stats.mean_accepted_length,
        "tokens_per_target_pass": stats.tokens_per_step,
        "draft_ms": stats.draft_ms,
        "verify_ms": stats.verify_ms,
        "ttft_ms": stats.ttft_ms,
        "draft_source": stats.draft_source,
    }
