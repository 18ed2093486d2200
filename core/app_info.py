"""What this installation is: version, llama.cpp build, compute backend, licences.

``specchat --version``, ``--self-test`` and the About dialog all read it from here,
so the three never disagree. Licences come from the installed packages' metadata,
which a frozen bundle carries too (the PyInstaller spec copies it); native parts
that ship without Python metadata are listed by hand below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata

DISTRIBUTION = "specchat"

# Native components inside the wheels, which importlib.metadata cannot name.
NATIVE_COMPONENTS: tuple[tuple[str, str, str], ...] = (
    ("llama.cpp / ggml (inside llama-cpp-python)", "", "MIT"),
    ("Qt 6 (inside PySide6)", "", "LGPL-3.0-only"),
)


@dataclass(frozen=True)
class Component:
    """One bundled piece of software and the licence it is used under."""

    name: str
    version: str
    licence: str


def app_version() -> str:
    """SpecChat's version, or "unknown" when no package metadata is installed."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


def llama_cpp_build() -> str:
    """llama-cpp-python's version and the CPU features its llama.cpp was built for."""
    import llama_cpp

    features = llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip(" |")
    return f"llama-cpp-python {llama_cpp.__version__} ({features})"


def backend_summary() -> list[str]:
    """One line for the active backend, then one per device llama.cpp sees."""
    from core.engine.backend import backend_devices, gpu_devices, gpu_offload_supported

    devices = backend_devices()
    gpus = gpu_devices(devices)
    if gpus and gpu_offload_supported():
        first = gpus[0]
        lines = [f"backend: {first.backend or first.name} (GPU offload available)"]
    else:
        lines = ["backend: CPU (this llama.cpp build has no GPU offload, or it sees no GPU)"]
    for device in devices:
        memory = f", {device.memory_total / 2**30:.1f} GiB" if device.memory_total else ""
        lines.append(f"device {device.name}: {device.description} ({device.kind}{memory})")
    return lines


def _licence(dist: metadata.Distribution) -> str:
    meta = dist.metadata
    expression = meta.get_all("License-Expression") or []
    if expression:
        return str(expression[0])
    for classifier in meta.get_all("Classifier") or []:
        if classifier.startswith("License :: OSI Approved :: "):
            return classifier.removeprefix("License :: OSI Approved :: ")
    text = str((meta.get_all("License") or [""])[0]).strip()
    # Some packages paste the whole licence text into this field; keep its first line.
    return text.splitlines()[0][:60] if text else "see the package"


def _requirement_name(requirement: str) -> str | None:
    if ";" in requirement and "extra ==" in requirement.split(";", 1)[1]:
        return None  # optional extras are not installed with the app
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    return match.group(0) if match else None


def bundled_components() -> list[Component]:
    """SpecChat and every installed package it depends on, with their licences."""
    seen: dict[str, Component] = {}
    pending = [DISTRIBUTION]
    while pending:
        name = pending.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[key] = Component(str(dist.metadata["Name"]), dist.version, _licence(dist))
        for requirement in dist.requires or []:
            required = _requirement_name(requirement)
            if required:
                pending.append(required)
    components = sorted(seen.values(), key=lambda component: component.name.lower())
    components += [Component(*native) for native in NATIVE_COMPONENTS]
    return components


def version_text() -> str:
    """What ``specchat --version`` prints."""
    return f"SpecChat {app_version()}\n{llama_cpp_build()}"
