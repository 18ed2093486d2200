"""The end-of-run readout, in llama.cpp's ``llama-speculative`` layout plus extras."""

from __future__ import annotations

from core.engine.events import GenerationStats


def format_readout(stats: GenerationStats) -> str:
    prompt_evaluated = stats.n_prompt - stats.n_prompt_reused
    # After a regenerate or a follow-up most of the prompt comes from the cache; without
    # saying so, "encoded 1 tokens ... 8432 t/s" read like a fault.
    reused = (
        f" ({stats.n_prompt_reused} more reused from the cache)" if stats.n_prompt_reused else ""
    )
    lines = [
        f"encoded {prompt_evaluated:4d} tokens in {stats.prompt_ms / 1000:8.3f} seconds, "
        f"speed: {stats.prompt_tokens_per_second:8.3f} t/s{reused}",
        f"decoded {stats.n_predict:4d} tokens in {stats.decode_ms / 1000:8.3f} seconds, "
        f"speed: {stats.decode_tokens_per_second:8.3f} t/s",
        "",
        f"draft     = {stats.draft_source}",
        f"n_draft   = {stats.draft_max}",
        f"n_predict = {stats.n_predict}",
        f"n_drafted = {stats.n_drafted}",
        f"n_accept  = {stats.n_accept}",
        f"accept    = {stats.acceptance * 100:.3f}%",
        f"mean accepted length = {stats.mean_accepted_length:.3f} "
        f"(tokens per target pass {stats.tokens_per_step:.3f})",
        f"time to first token  = {stats.ttft_ms:.1f} ms",
        f"draft time = {stats.draft_ms / 1000:.3f} s, verify time = {stats.verify_ms / 1000:.3f} s",
        f"seed = {stats.seed}",
    ]
    return "\n".join(lines)
