"""Entry point of ``specchat-cli``: dispatches subcommands, reports errors plainly.

Every subcommand inherits the error handling here (see ``core/cli/failures.py``):
one sentence on stderr and exit code 1 for a failure, 2 for a usage error, 130 for
Ctrl+C; with ``--json`` the failure is a JSON object on stdout; ``--debug`` (or
``SPECCHAT_DEBUG=1``) adds the traceback.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

from core.cli.failures import configure_logging, debug_requested, run_reporting_failures

# Subcommand name -> (module, function taking the full argument list after the name is
# kept or dropped as the function expects). Imported lazily so `--help` and the library
# commands never load llama.cpp.
# In the order `specchat-cli --help` lists them.
LIBRARY_COMMANDS = ("search", "download", "models", "token")
TUNE_COMMANDS = ("ab", "sweep", "calibrate")
SUBCOMMANDS: dict[str, tuple[str, str, bool]] = {
    # name: (module, function, pass the subcommand name along)
    "bench": ("core.cli.bench", "run_bench", False),
    **{name: ("core.cli.tune_commands", "run_tune_command", True) for name in TUNE_COMMANDS},
    "serve": ("core.cli.serve_command", "run_serve", False),
    **{
        name: ("core.cli.library_commands", "run_library_command", True)
        for name in LIBRARY_COMMANDS
    },
    "rpc-server": ("core.cli.rpc_server_command", "run_rpc_server", False),
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
    configure_logging(debug_requested(args))

    def dispatch(arguments: list[str]) -> int:
        function, rest = _subcommand(arguments)
        return function(rest)

    return run_reporting_failures(dispatch, args)


if __name__ == "__main__":
    sys.exit(main())
