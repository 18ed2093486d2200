"""Does serving cost speed? A benchmark script, not a test.

One streaming chat request through the local server (the official ``openai``
client, a real localhost port, the engine in its worker process) against the same
generation through the command line's path (``specchat-cli --chat``: the engine in
process, ``tokenize_chat`` then ``generate``), on the demo pair, greedy, same
settings, so both produce the same tokens. Rounds alternate between the two (ABBA), so
both see the same state of a shared machine.

Reported per side: end-to-end tokens/s (answer tokens over the time from the
request to the last token), the engine's own decode rate, and the time to the
first token (for the server: from sending the request to the first streamed
content chunk). The ratio server/command line is the figure of merit (target
>= 0.95).

Usage::

    python tests/benchmarks/server_stream_bench.py [--n-predict 256] [--rounds 3]
        [--draft-max 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))
from tests.support.bench_home import temporary_home  # noqa: E402

_HOME = temporary_home("specchat-bench-")

import openai  # noqa: E402

from core.demo_models import ensure_demo_pair  # noqa: E402
from core.engine import (  # noqa: E402
    ChatMessage,
    DraftSettings,
    FinishedEvent,
    GenerationSettings,
    ModelConfig,
    SamplingSettings,
    SpeculativeEngine,
    StepEvent,
)
from tests.support.server_thread import ServerThread  # noqa: E402

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
DEMO_CACHE = Path(os.environ.get("SPECCHAT_TEST_MODELS", REPO_ROOT / ".specchat-cache" / "models"))


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


@dataclass
class Round:
    tokens: int
    wall_s: float
    ttft_s: float
    engine_rate: float
    text: str

    @property
    def rate(self) -> float:
        return self.tokens / self.wall_s


def command_line_round(engine: SpeculativeEngine, settings: GenerationSettings) -> Round:
    started = time.perf_counter()
    prompt = engine.tokenize_chat([ChatMessage("user", PROMPT)])
    first = 0.0
    parts: list[str] = []
    finished: FinishedEvent | None = None
    for event in engine.generate(prompt, settings):
        if isinstance(event, StepEvent):
            if not first and event.tokens:
                first = time.perf_counter() - started
            parts.append(event.text)
        else:
            finished = event
    wall = time.perf_counter() - started
    assert finished is not None
    stats = finished.stats
    return Round(stats.n_predict, wall, first, stats.decode_tokens_per_second, "".join(parts))


def server_round(client: openai.OpenAI, n_predict: int) -> Round:
    started = time.perf_counter()
    stream = client.chat.completions.create(
        model="demo",
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=n_predict,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    first = 0.0
    parts: list[str] = []
    tokens = 0
    engine_rate = 0.0
    for chunk in stream:
        if chunk.choices:
            content = chunk.choices[0].delta.content
            if content:
                if not first:
                    first = time.perf_counter() - started
                parts.append(content)
            if chunk.choices[0].finish_reason and chunk.model_extra:
                engine_rate = float(chunk.model_extra["timings"]["predicted_per_second"])
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    wall = time.perf_counter() - started
    return Round(tokens, wall, first, engine_rate, "".join(parts))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-predict", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--draft-max", type=int, default=8)
    args = parser.parse_args()

    pair = ensure_demo_pair(DEMO_CACHE)
    target = ModelConfig(pair.target, n_ctx=2048)
    draft = ModelConfig(pair.draft)
    # Fixed draft length: the adaptive guard reacts to the machine's load, which
    # would give the two sides different drafting on a busy machine.
    settings = GenerationSettings(
        n_predict=args.n_predict,
        sampling=SamplingSettings(temperature=0.0),
        drafting=DraftSettings(n_max=args.draft_max, adaptive=False),
    )
    say(f"demo pair, greedy, {args.n_predict} tokens, draft-max {args.draft_max}, ")
    say(f"{args.rounds} interleaved rounds (plus one warm-up each)")
    server = ServerThread(target, draft, settings)
    engine = SpeculativeEngine(target, draft)
    try:
        client = openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=0)
        command_line_round(engine, settings)  # warm-up: page in the weights
        server_round(client, args.n_predict)
        cli_rounds: list[Round] = []
        served_rounds: list[Round] = []
        for index in range(args.rounds):
            # ABBA order: neither side always runs right after the other.
            if index % 2:
                served_rounds.append(server_round(client, args.n_predict))
                cli_rounds.append(command_line_round(engine, settings))
            else:
                cli_rounds.append(command_line_round(engine, settings))
                served_rounds.append(server_round(client, args.n_predict))
            say(
                f"round {index + 1}: command line {cli_rounds[-1].rate:6.1f} t/s, "
                f"server {served_rounds[-1].rate:6.1f} t/s"
            )
    finally:
        engine.close()
        server.close()

    same = all(c.text == s.text for c, s in zip(cli_rounds, served_rounds, strict=True))

    def median(rounds: list[Round], attribute: str) -> float:
        return statistics.median(getattr(r, attribute) for r in rounds)

    say()
    say(f"{'':22}{'command line':>14}{'server':>10}{'ratio':>8}")
    for label, attribute, scale in (
        ("end-to-end t/s", "rate", 1.0),
        ("engine decode t/s", "engine_rate", 1.0),
        ("time to first token ms", "ttft_s", 1000.0),
    ):
        cli_value = median(cli_rounds, attribute) * scale
        served_value = median(served_rounds, attribute) * scale
        say(
            f"{label:22}{cli_value:14.1f}{served_value:10.1f}"
            f"{served_value / cli_value if cli_value else 0.0:8.2f}"
        )
    say(f"same text on both sides: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
