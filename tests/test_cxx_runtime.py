"""The C++ runtime is made global before llama_cpp loads (the CUDA print_info crash)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from core.cxx_runtime import make_cxx_runtime_global


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the clash is Linux-only")
def test_the_runtime_is_global_before_llama_cpp_is_imported() -> None:
    # In a fresh process: importing core alone must leave libstdc++ resolvable through the
    # global scope (dlsym on the main program's handle), before llama_cpp is loaded.
    probe = (
        "import ctypes, sys\n"
        "import core\n"
        "assert 'llama_cpp' not in sys.modules\n"
        "ctypes.CDLL(None)['_ZNSt6locale7classicEv']\n"
        "print('global')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "global"


def test_calling_it_again_is_harmless() -> None:
    assert make_cxx_runtime_global() is sys.platform.startswith("linux")
