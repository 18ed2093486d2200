"""Bad model files give clear errors and leave the process alive."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFWriter

from core.engine import ModelConfig, SpeculativeEngine
from core.errors import ModelFileError, ModelLoadError, VocabMismatchError
from core.gguf_meta import read_gguf_metadata
from tests.conftest import TinyModels


def test_metadata_of_a_good_model(tiny_models: TinyModels) -> None:
    meta = read_gguf_metadata(tiny_models.target)
    assert meta.architecture == "llama"
    assert meta.quantization == "F32"
    assert meta.context_length == 512
    assert meta.has_chat_template
    assert meta.parameter_count > 100_000
    assert meta.vocab.vocab_type == "SPM"
    assert len(meta.vocab.fingerprint) == 16


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="not found"):
        SpeculativeEngine(ModelConfig(tmp_path / "nope.gguf"))


def test_file_that_is_not_gguf(tmp_path: Path) -> None:
    path = tmp_path / "notes.gguf"
    path.write_text("these are not weights\n" * 10)
    with pytest.raises(ModelFileError, match="not a GGUF file"):
        SpeculativeEngine(ModelConfig(path))


@pytest.mark.parametrize("keep_fraction", [0.02, 0.5, 0.999])
def test_truncated_file(tmp_path: Path, tiny_models: TinyModels, keep_fraction: float) -> None:
    data = tiny_models.target.read_bytes()
    path = tmp_path / "partial.gguf"
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    with pytest.raises(ModelFileError, match="truncated"):
        SpeculativeEngine(ModelConfig(path))


def test_truncated_draft_is_reported_before_the_target_loads(
    tmp_path: Path, tiny_models: TinyModels
) -> None:
    data = tiny_models.draft.read_bytes()
    path = tmp_path / "draft-partial.gguf"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=r"draft-partial\.gguf: file is truncated"):
        SpeculativeEngine(ModelConfig(tiny_models.target), ModelConfig(path))


def test_unsupported_architecture(tmp_path: Path, tiny_models: TinyModels) -> None:
    path = tmp_path / "alien.gguf"
    writer = GGUFWriter(str(path), "alien-transformer")
    writer.add_name("alien")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelLoadError, match="alien-transformer"):
        SpeculativeEngine(ModelConfig(path))
    # The process is alive and still loads good models.
    with SpeculativeEngine(ModelConfig(tiny_models.target, n_ctx=128)) as engine:
        assert engine.tokenize("the cat")


def test_incompatible_vocabulary_is_refused_with_the_first_differing_token(
    tiny_models: TinyModels,
) -> None:
    with pytest.raises(VocabMismatchError, match=r"token 300 differs"):
        SpeculativeEngine(ModelConfig(tiny_models.target), ModelConfig(tiny_models.other_vocab))


def test_vocabulary_size_difference_over_128_is_refused(tiny_models: TinyModels) -> None:
    with pytest.raises(VocabMismatchError, match=r"vocab size differs by 200 .*at most 128"):
        SpeculativeEngine(ModelConfig(tiny_models.target), ModelConfig(tiny_models.bigger_vocab))


@pytest.mark.demo_pair
def test_real_models_with_different_tokenizers_are_refused(
    tiny_models: TinyModels, demo_pair: object, tmp_path: Path
) -> None:
    from core.demo_models import DemoPair

    assert isinstance(demo_pair, DemoPair)
    with pytest.raises(VocabMismatchError) as caught:
        SpeculativeEngine(ModelConfig(demo_pair.target), ModelConfig(tiny_models.target))
    message = str(caught.value)
    assert "vocab type differs: target BPE, draft SPM" in message
    assert "vocab size differs" in message
    # A copy of the draft under another name is of course compatible.
    copy = tmp_path / "copy.gguf"
    shutil.copyfile(demo_pair.draft, copy)
    with SpeculativeEngine(ModelConfig(demo_pair.target, n_ctx=256), ModelConfig(copy)) as engine:
        assert engine.vocab_compatibility is not None
        assert engine.vocab_compatibility.compatible


def test_float64_weight_matrix_is_refused_before_llama_cpp_sees_it(tmp_path: Path) -> None:
    # llama.cpp loads such a file and then segfaults in its CPU matmul (met while
    # writing the tiny test models), so the metadata check must refuse it.
    path = tmp_path / "f64.gguf"
    writer = GGUFWriter(str(path), "llama")
    writer.add_tensor("output.weight", np.ones((8, 4), dtype=np.float64))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelFileError, match=r"'output\.weight' has type F64"):
        SpeculativeEngine(ModelConfig(path))
