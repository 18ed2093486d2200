"""The model draft: what it proposes, what it reports, and what it decodes when."""

from __future__ import annotations

import numpy as np
import pytest

from core.engine import DraftSettings, SpeculativeEngine
from core.engine.draft_confidence import ConfidenceCalibration, ConfidenceCutoff
from core.engine.drafting import ModelDrafter
from core.engine.model import LoadedModel


def _drafter(engine: SpeculativeEngine) -> ModelDrafter:
    assert engine.draft is not None
    return ModelDrafter(engine.draft, DraftSettings(n_max=16), engine.target.n_vocab)


def test_greedy_draft_reports_its_softmax_probability_with_and_without_a_cutoff(
    demo_engine: SpeculativeEngine,
) -> None:
    """Without a cutoff the next decode starts before the probability is computed
    (from a copy of the logits that decode overwrites); with one it is computed
    first. Both report the draft's softmax probability of each argmax."""
    draft_model = demo_engine.draft
    assert draft_model is not None
    history = demo_engine.tokenize("Write a poem about the sea:")
    # Each proposal from an empty cache: the same batches, which a GPU rounds alike.
    draft_model.reset()
    free = _drafter(demo_engine).propose(history, 6)
    admit_all = ConfidenceCutoff(ConfidenceCalibration(), 10.0, 0.0)
    draft_model.reset()
    checked = _drafter(demo_engine).propose(history, 6, admit_all)
    assert len(free) == 6
    assert checked.tokens == free.tokens
    assert checked.probabilities == pytest.approx(free.probabilities, rel=1e-6)

    # Each position's probability, recomputed from the same decodes, one at a time.
    draft_model.reset()
    draft_model.append(history)
    expected = []
    for token in free.tokens:
        logits = draft_model.logits(-1).astype(np.float64)
        assert int(np.argmax(logits)) == token
        expected.append(1.0 / np.exp(logits - logits.max()).sum())
        draft_model.append([token])
    assert free.probabilities == pytest.approx(expected, rel=1e-5)
    assert free.confidences == free.probabilities


def test_catch_up_decodes_what_the_next_draft_needs_once(
    demo_engine: SpeculativeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine calls catch_up right after a step so that the draft decodes the
    kept tokens while the step is reported; propose then starts from its logits."""
    draft_model = demo_engine.draft
    assert draft_model is not None
    history = demo_engine.tokenize("Write a poem about the sea:")
    # Every path starts from an empty cache and decodes the same batches, which a
    # GPU rounds alike.
    draft_model.reset()
    first = _drafter(demo_engine).propose(history, 4)
    # The target kept the whole draft and added a bonus token: the draft never
    # decoded its own last token, so both are missing from its cache.
    kept = [*history, *first.tokens, 13]
    draft_model.reset()
    expected = _drafter(demo_engine)
    expected.propose(history, 4)
    expected.rollback(kept[:-1])
    reference = expected.propose(kept, 4)

    draft_model.reset()
    drafter = _drafter(demo_engine)
    drafter.propose(history, 4)
    drafter.rollback(kept[:-1])
    decoded: list[list[int]] = []
    append = LoadedModel.append

    def counting_append(model: LoadedModel, tokens: list[int], *args: object, **kw: object) -> None:
        decoded.append(list(tokens))
        append(model, tokens, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(LoadedModel, "append", counting_append)
    drafter.catch_up(kept)
    assert decoded == [[first.tokens[-1], 13]]
    proposal = drafter.propose(kept, 4)
    assert proposal.tokens == reference.tokens
    assert proposal.probabilities == pytest.approx(reference.probabilities, rel=1e-6)
    # Only the drafted tokens were decoded after the catch-up (the last one needs no decode).
    assert decoded[1:] == [[token] for token in proposal.tokens[:-1]]

    # A history other than the caught-up one is decoded as usual.
    drafter.rollback(kept[:-1])
    drafter.catch_up(kept)
    other = [*kept[:-1], 42]
    decoded.clear()
    drafter.propose(other, 1)
    assert decoded[0][-1] == 42
