"""Layering rules: core/ never imports Qt, so it runs in scripts, servers and tests."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "core"
FORBIDDEN = ("PySide6", "qasync", "shiboken6", "gui")


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_core_module_imports_qt_or_gui() -> None:
    offenders = {
        str(path.relative_to(CORE.parent)): sorted(imported_roots(path) & set(FORBIDDEN))
        for path in CORE.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def loaded_after_importing(modules: list[str], packages: tuple[str, ...]) -> list[str]:
    """The modules of ``packages`` (top-level names or dotted prefixes) that a fresh
    interpreter has loaded after importing ``modules``."""
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"packages = {packages!r}\n"
        "prefixes = tuple(p + '.' for p in packages)\n"
        "loaded = [m for m in sys.modules if m in packages or m.startswith(prefixes)]\n"
        "print(','.join(sorted(loaded)))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=CORE.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    return [name for name in completed.stdout.strip().split(",") if name]


def test_importing_all_of_core_loads_no_qt() -> None:
    modules = sorted(
        ".".join(path.relative_to(CORE.parent).with_suffix("").parts).removesuffix(".__init__")
        for path in CORE.rglob("*.py")
    )
    assert loaded_after_importing(modules, ("PySide6", "qasync", "shiboken6")) == []


def test_the_engine_and_the_demo_pair_writer_need_no_hub_client() -> None:
    # The GPU checks (tests/gpu) write the demo pair and run the engine on a machine
    # that has llama.cpp and numpy but not the Hub client's HTTP packages.
    modules = ["core.demo_models", "core.engine", "core.speculation"]
    hub = ("huggingface_hub", "httpx2", "keyring", "starlette", "core.hub")
    assert loaded_after_importing(modules, hub) == []
