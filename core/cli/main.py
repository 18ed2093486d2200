"""Entry point of ``specchat-cli``: dispatches subcommands, reports errors plainly."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Callable

from core.errors import SpecChatError

# Subcommand name -> (module, function taking the full argument list after the name is
# kept or dropped as the function expects). Imported lazily so `--help` and the library
# commands never load llama.cpp.
LIBRARY_COMMANDS = {"search", "download", "models", "token"}
SUBCOMMANDS: dict[str, tuple[str, str, bool]] = {
    # name: (module, function, pass the subcommand name along)
    **{
        name: ("core.cli.library_commands", "run_library_command", True)
        for name in LIBRARY_COMMANDS
    },
    "bench": ("core.cli.bench", "run_bench", False),
    **{
        name: ("core.cli.tune_commands", "run_tune_command", True)
        for name in ("sweep", "ab", "calibrate")
    },
}


def _subcommand(args: list[str]) -> tuple[Callable[[list[str]], int], list[str]]:
    """The function that handles `args` and the arguments it takes."""
    if args and args[0] in SUBCOMMANDS:
        module_name, function_name, keep_name = SUBCOMMANDS[args[0]]
        function = getattr(importlib.import_module(module_name), function_name)
        return function, args if keep_name else args[1:]
    from core.cli.generate_command import run_generate

    return run_generate, args


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=os.environ.get("SPECCHAT_LOG_LEVEL", "WARNING").upper(),
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        function, arguments = _subcommand(args)
        return function(arguments)
    except SpecChatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
