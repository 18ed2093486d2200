"""Entry point of ``specchat-cli``: dispatches subcommands, reports errors plainly."""

from __future__ import annotations

import logging
import os
import sys

from core.errors import SpecChatError

LIBRARY_COMMANDS = {"search", "download", "models", "token"}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=os.environ.get("SPECCHAT_LOG_LEVEL", "WARNING").upper(),
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        if args and args[0] in LIBRARY_COMMANDS:
            from core.cli.library_commands import run_library_command

            return run_library_command(args)
        if args and args[0] == "bench":
            from core.cli.bench import run_bench

            return run_bench(args[1:])
        from core.cli.generate_command import run_generate

        return run_generate(args)
    except SpecChatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
