"""Which devices a model's layers go to: local GPUs, RPC workers, the CPU.

With no RPC worker anywhere in the process, llama.cpp chooses (``devices`` stays
NULL). Once a worker is registered, every model gets an explicit device list:
registration is process-wide, and the default would spread a draft, or a target
reloaded without that worker, over it too.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import llama_cpp

from core.engine.backend import describe_placement, gpu_offload_supported
from core.engine.config import ModelConfig
from core.errors import ConfigError
from core.rpc import native

if TYPE_CHECKING:
    from core.engine.model import LoadedModel  # model.py imports this module


@dataclass
class Placement:
    """What ``llama_model_params`` gets; keep it alive until the load returns.

    Attributes:
        devices: NULL-terminated device array, or None for llama.cpp's default.
        tensor_split: ``llama_max_devices()`` floats, or None for "by free memory".
        workers: the RPC workers holding layers, in device order.
    """

    devices: ctypes.Array[ctypes.c_void_p] | None = None
    tensor_split: ctypes.Array[ctypes.c_float] | None = None
    workers: tuple[str, ...] = field(default=())

    def apply(self, params: llama_cpp.llama_model_params) -> None:
        if self.devices is not None:
            # The field is a plain void pointer; llama_cpp's annotation says array.
            params.devices = ctypes.cast(self.devices, ctypes.c_void_p)  # type: ignore[assignment]
        if self.tensor_split is not None:
            params.tensor_split = self.tensor_split


def plan_placement(config: ModelConfig) -> Placement:
    """Register ``config``'s workers (probing them first) and list its devices.

    Raises:
        RpcUnavailableError: workers asked for, but llama.cpp has no RPC support.
        RpcWorkerError: a worker is unreachable, busy or incompatible (named).
        ConfigError: more tensor-split proportions than devices.
    """
    placement = Placement(workers=config.rpc_servers)
    device_count: int | None = None
    if config.rpc_servers:
        devices = native.register_workers(config.rpc_servers) + native.local_accelerators()
        placement.devices = native.device_array(devices)
        device_count = len(devices)
    elif native.registered_endpoints():
        devices = native.local_accelerators()
        placement.devices = native.device_array(devices)
        device_count = len(devices)
    if config.tensor_split:
        if device_count is None:
            device_count = len(native.local_accelerators())
        if len(config.tensor_split) > device_count:
            raise ConfigError(
                f"tensor split {','.join(f'{v:g}' for v in config.tensor_split)} has "
                f"{len(config.tensor_split)} proportions but {config.path.name} has "
                f"{_counted(device_count, 'device')} to split over "
                f"({_counted(len(config.rpc_servers), 'RPC worker')}, then this machine's "
                "GPUs; the CPU takes the layers not offloaded)"
            )
        size = int(llama_cpp.llama_max_devices())
        values = list(config.tensor_split) + [0.0] * (size - len(config.tensor_split))
        placement.tensor_split = (ctypes.c_float * size)(*values)
    return placement


def has_offload_device(config: ModelConfig) -> bool:
    """Whether offloaded layers of ``config``'s model leave the CPU: a local GPU or
    its RPC workers take them."""
    return bool(config.rpc_servers) or gpu_offload_supported()


def offloaded_layers(model: LoadedModel) -> int:
    """Layers of ``model`` on GPUs or RPC workers (0 on the CPU)."""
    if not has_offload_device(model.config):
        return 0
    n_layer = model.metadata.block_count
    return min(model.n_gpu_layers, n_layer) if n_layer else model.n_gpu_layers


def pair_placement(target: LoadedModel, draft: LoadedModel | None) -> str:
    """Where a pair computes, in words that stay the same while it stays put: the
    device, the RPC workers and each model's offloaded layers. A timing measured in
    one placement (the tuner's cost curve) holds only there."""
    target_layers = offloaded_layers(target)
    draft_layers = offloaded_layers(draft) if draft is not None else 0
    backend, device = describe_placement(max(target_layers, draft_layers))
    label = f"{backend} {device}; target {target_layers} layers offloaded"
    if draft is not None:
        label += f", draft {draft_layers}"
    if target.config.rpc_servers:
        label += f"; RPC {','.join(target.config.rpc_servers)}"
    return label


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
