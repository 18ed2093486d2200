"""Reading llama.cpp's output rows through numpy views: the same numbers as a
fresh view per row, whatever batch wrote them last."""

from __future__ import annotations

import llama_cpp
import numpy as np

from core.engine import SpeculativeEngine
from core.engine.model import LoadedModel


def _decode_batch(target: LoadedModel, tokens: list[int]) -> None:
    """The same batches each time, so a GPU rounds them the same way too."""
    target.reset()
    target.append(tokens[:2])
    target.append(tokens[2:], all_logits=True)


def test_row_block_and_cached_views_show_each_decodes_own_logits(
    tiny_engine: SpeculativeEngine,
) -> None:
    target = tiny_engine.target
    tokens = tiny_engine.tokenize("the cat sat on the mat")
    assert len(tokens) >= 4
    count = len(tokens) - 2
    _decode_batch(target, tokens)
    per_row = np.stack([target.logits(row).copy() for row in range(count)])
    rows = target.logit_rows(count)
    assert rows is not None
    assert rows.shape == (count, target.n_vocab)
    np.testing.assert_array_equal(rows, per_row)
    assert rows.argmax(axis=1).tolist() == [int(np.argmax(r)) for r in per_row]

    # Another decode writes other numbers where the cached views look, and they
    # show them: the same as a view made afresh.
    target.reset()
    target.append(tokens[:3])
    fresh = np.ctypeslib.as_array(
        llama_cpp.llama_get_logits_ith(target.context, -1), shape=(target.n_vocab,)
    )
    np.testing.assert_array_equal(target.logits(-1), fresh)

    # The same batches again: the block shows the first numbers again.
    _decode_batch(target, tokens)
    again = target.logit_rows(count)
    assert again is not None
    np.testing.assert_array_equal(again, per_row)
    target.reset()
