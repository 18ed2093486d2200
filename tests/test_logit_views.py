"""Reading llama.cpp's output rows through numpy views: the same numbers as a
fresh view per row, whatever batch wrote them last."""

from __future__ import annotations

import numpy as np

from core.engine import SpeculativeEngine


def test_row_block_and_cached_views_show_each_decodes_own_logits(
    tiny_engine: SpeculativeEngine,
) -> None:
    target = tiny_engine.target
    tokens = tiny_engine.tokenize("the cat sat on the mat")
    assert len(tokens) >= 4
    target.reset()
    target.append(tokens[:2])
    target.append(tokens[2:], all_logits=True)
    count = len(tokens) - 2
    per_row = np.stack([target.logits(row).copy() for row in range(count)])
    rows = target.logit_rows(count)
    assert rows is not None
    assert rows.shape == (count, target.n_vocab)
    np.testing.assert_array_equal(rows, per_row)
    assert rows.argmax(axis=1).tolist() == [int(np.argmax(r)) for r in per_row]

    # A later decode writes new numbers where the cached views look.
    first = target.logits(-1).copy()
    target.append([tokens[0]])
    assert not np.array_equal(target.logits(-1), first)
    target.prefill(tokens[:-1])
    target.forget_from(len(tokens) - 1)
    target.append(tokens[-1:])
    # A one-token batch rounds differently from the batch above.
    np.testing.assert_allclose(target.logits(-1), per_row[-1], rtol=1e-4, atol=1e-4)
    one = target.logit_rows(1)
    assert one is not None
    np.testing.assert_array_equal(one[0], target.logits(-1))
    target.reset()
