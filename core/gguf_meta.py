"""Reads GGUF metadata and checks file integrity without loading any weights.

The ``gguf`` package's ``GGUFReader`` decodes every array element into numpy
objects (about 4 s for a 49k-token vocabulary), which is too slow for scanning a
model library, so this module walks the header with ``struct`` instead. It reads
only the key/value section and the tensor index, then checks that every tensor's
data lies inside the file, which catches truncated downloads.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from core.errors import ModelFileError
from core.vocab import VocabInfo

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32

# GGUF value type ids (gguf spec): id -> struct format of a scalar.
_SCALAR_FORMATS = {
    0: "B",  # uint8
    1: "b",  # int8
    2: "H",  # uint16
    3: "h",  # int16
    4: "I",  # uint32
    5: "i",  # int32
    6: "f",  # float32
    7: "?",  # bool
    10: "Q",  # uint64
    11: "q",  # int64
    12: "d",  # float64
}
_STRING = 8
_ARRAY = 9

# Integer and float64 matrices load in llama.cpp but crash its CPU matmul; refuse them.
_NON_WEIGHT_TYPE_NAMES = ("F64", "I8", "I16", "I32", "I64")

# Arrays this large are skipped unless asked for, e.g. merges; tokens are kept.
_KEEP_ARRAYS = {"tokenizer.ggml.tokens"}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int

    @property
    def n_elements(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count

    @property
    def n_bytes(self) -> int:
        # gguf's tables are imported where used: the package loads numpy, and the
        # window imports this module on its way up (its first paint waits on imports).
        from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

        try:
            block_size, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(self.ggml_type)]
        except (ValueError, KeyError):
            raise ModelFileError(
                f"tensor {self.name!r} has unknown ggml type {self.ggml_type}"
            ) from None
        return self.n_elements // block_size * type_size


@dataclass(frozen=True)
class GgufMetadata:
    """What a model library or the engine needs to know about a GGUF file."""

    path: Path
    file_size: int
    version: int
    architecture: str
    name: str
    parameter_count: int
    quantization: str
    context_length: int | None
    chat_template: str | None
    vocab: VocabInfo
    block_count: int | None = None
    embedding_length: int | None = None
    head_count: int | None = None
    head_count_kv: int | None = None
    values: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def has_chat_template(self) -> bool:
        return bool(self.chat_template)


class _Reader:
    def __init__(self, stream: BinaryIO, path: Path, file_size: int) -> None:
        self._stream = stream
        self._path = path
        self._file_size = file_size

    def read(self, n: int) -> bytes:
        data = self._stream.read(n)
        if len(data) != n:
            raise ModelFileError(f"{self._path.name}: file is truncated (header ends early)")
        return data

    def unpack(self, fmt: str) -> Any:
        return struct.unpack("<" + fmt, self.read(struct.calcsize("<" + fmt)))[0]

    def string(self) -> str:
        length = self.unpack("Q")
        if length > self._file_size:
            raise ModelFileError(f"{self._path.name}: corrupt header (string length {length})")
        return self.read(length).decode("utf-8", errors="replace")

    def skip(self, n: int) -> None:
        self._stream.seek(n, os.SEEK_CUR)

    def tell(self) -> int:
        return self._stream.tell()

    def value(self, value_type: int, keep: bool = True) -> Any:
        if value_type == _STRING:
            return self.string()
        if value_type == _ARRAY:
            item_type = self.unpack("I")
            count = self.unpack("Q")
            if count > self._file_size:
                raise ModelFileError(f"{self._path.name}: corrupt header (array of {count})")
            if item_type in _SCALAR_FORMATS:
                fmt = _SCALAR_FORMATS[item_type]
                size = struct.calcsize(fmt) * count
                if not keep:
                    self.skip(size)
                    return None
                return list(struct.unpack(f"<{count}{fmt}", self.read(size)))
            if item_type == _STRING:
                if not keep:
                    for _ in range(count):
                        self.skip(self.unpack("Q"))
                    return None
                return [self.string() for _ in range(count)]
            return [self.value(item_type, keep) for _ in range(count)]
        scalar_format = _SCALAR_FORMATS.get(value_type)
        if scalar_format is None:
            raise ModelFileError(f"{self._path.name}: corrupt header (value type {value_type})")
        return self.unpack(scalar_format)


def _quantization_label(values: dict[str, Any], tensors: list[TensorInfo]) -> str:
    from gguf.constants import GGMLQuantizationType, LlamaFileType

    file_type = values.get("general.file_type")
    if isinstance(file_type, int):
        try:
            return LlamaFileType(file_type).name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            pass
    # No file type recorded: name it after the most common tensor type by bytes.
    weight: dict[int, int] = {}
    for tensor in tensors:
        weight[tensor.ggml_type] = weight.get(tensor.ggml_type, 0) + tensor.n_elements
    if not weight:
        return "unknown"
    dominant = max(weight, key=lambda key: weight[key])
    try:
        return GGMLQuantizationType(dominant).name
    except ValueError:
        return f"type{dominant}"


def read_gguf_metadata(path: str | os.PathLike[str]) -> GgufMetadata:
    """Read a GGUF file's metadata and verify that its tensor data is complete.

    Raises:
        ModelFileError: missing file, not a GGUF file, unsupported version,
            corrupt header, or tensor data running past the end of the file.
    """
    file_path = Path(path)
    if not file_path.exists():
        raise ModelFileError(f"model file not found: {file_path}")
    if not file_path.is_file():
        raise ModelFileError(f"not a file: {file_path}")
    file_size = file_path.stat().st_size
    try:
        with file_path.open("rb") as stream:
            reader = _Reader(stream, file_path, file_size)
            if file_size < 4 or reader.read(4) != GGUF_MAGIC:
                raise ModelFileError(f"{file_path.name}: not a GGUF file (wrong magic bytes)")
            version = reader.unpack("I")
            if version not in SUPPORTED_VERSIONS:
                raise ModelFileError(f"{file_path.name}: unsupported GGUF version {version}")
            tensor_count = reader.unpack("Q")
            kv_count = reader.unpack("Q")
            values: dict[str, Any] = {}
            for _ in range(kv_count):
                key = reader.string()
                value_type = reader.unpack("I")
                keep = (
                    value_type != _ARRAY
                    or key in _KEEP_ARRAYS
                    or not key.startswith("tokenizer.ggml.")
                )
                values[key] = reader.value(value_type, keep)
            tensors = []
            for _ in range(tensor_count):
                name = reader.string()
                n_dims = reader.unpack("I")
                shape = tuple(reader.unpack("Q") for _ in range(n_dims))
                ggml_type = reader.unpack("I")
                offset = reader.unpack("Q")
                tensors.append(TensorInfo(name, shape, ggml_type, offset))
            header_end = reader.tell()
    except OSError as exc:
        raise ModelFileError(f"cannot read {file_path}: {exc.strerror or exc}") from exc

    alignment = values.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0:
        alignment = DEFAULT_ALIGNMENT
    data_start = (header_end + alignment - 1) // alignment * alignment
    data_end = max((t.offset + t.n_bytes for t in tensors), default=0)
    if data_start + data_end > file_size:
        missing = data_start + data_end - file_size
        raise ModelFileError(
            f"{file_path}: file is truncated ({file_size} bytes, "
            f"{missing} bytes of tensor data missing); download or copy it again"
        )

    from gguf.constants import GGMLQuantizationType

    non_weight_types = {GGMLQuantizationType[name] for name in _NON_WEIGHT_TYPE_NAMES}
    for tensor in tensors:
        if len(tensor.shape) >= 2 and tensor.ggml_type in non_weight_types:
            raise ModelFileError(
                f"{file_path.name}: tensor {tensor.name!r} has type "
                f"{GGMLQuantizationType(tensor.ggml_type).name}, which llama.cpp cannot "
                "multiply with (the file was written by a broken converter)"
            )

    architecture = str(values.get("general.architecture", "unknown"))

    def arch_int(key: str) -> int | None:
        value = values.get(f"{architecture}.{key}")
        return value if isinstance(value, int) else None

    return GgufMetadata(
        path=file_path,
        file_size=file_size,
        version=version,
        architecture=architecture,
        name=str(values.get("general.name") or file_path.stem),
        parameter_count=sum(t.n_elements for t in tensors),
        quantization=_quantization_label(values, tensors),
        context_length=arch_int("context_length"),
        chat_template=values.get("tokenizer.chat_template"),
        vocab=VocabInfo.from_gguf_values(values),
        block_count=arch_int("block_count"),
        embedding_length=arch_int("embedding_length"),
        head_count=arch_int("attention.head_count"),
        head_count_kv=arch_int("attention.head_count_kv"),
        values=values,
    )


def file_sha256(path: Path, progress: Callable[[int], None] | None = None) -> str:
    """SHA-256 of a file, read in 8 MiB chunks; ``progress`` gets bytes read so far."""
    digest = hashlib.sha256()
    done = 0
    with path.open("rb") as stream:
        while chunk := stream.read(8 << 20):
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done)
    return digest.hexdigest()
