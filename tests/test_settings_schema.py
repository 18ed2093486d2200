"""The typed settings schema: defaults, types, ranges and choices are enforced."""

from __future__ import annotations

import pytest

from core.engine.config import DraftSource, GenerationSettings, SamplingSettings
from core.errors import ConfigError
from core.settings import (
    APP_SETTINGS,
    GENERATION_KNOBS,
    THEME_MODE,
    THREADS,
    PairSettings,
    Setting,
    generation_settings_from_dict,
    generation_settings_to_dict,
    knob_value,
    with_knob,
    with_knobs,
)


def test_every_setting_has_a_sentence_and_a_valid_default() -> None:
    for setting in (*APP_SETTINGS, *GENERATION_KNOBS, THREADS):
        assert setting.description.endswith(".")
        assert setting.label
        assert setting.validate(setting.default) == setting.default


def test_validation_checks_type_range_and_choices() -> None:
    count = Setting("count", 4, "Count", "How many.", minimum=1, maximum=8)
    assert count.validate(8) == 8
    with pytest.raises(ConfigError, match="below the minimum"):
        count.validate(0)
    with pytest.raises(ConfigError, match="above the maximum"):
        count.validate(9)
    with pytest.raises(ConfigError, match="expected int"):
        count.validate("4")
    # JSON true is not a number of anything.
    with pytest.raises(ConfigError, match="expected int"):
        count.validate(True)
    with pytest.raises(ConfigError, match="not one of"):
        THEME_MODE.validate("purple")
    ratio = Setting("ratio", 0.5, "Ratio", "A share.", minimum=0.0, maximum=1.0)
    assert ratio.validate(1) == 1.0 and isinstance(ratio.validate(1), float)


def test_a_default_outside_its_own_range_fails_at_definition() -> None:
    with pytest.raises(ConfigError):
        Setting("bad", 10, "Bad", "Broken.", maximum=5)


def test_knobs_map_to_generation_settings_fields() -> None:
    settings = GenerationSettings()
    assert knob_value(settings, "draft_max") == settings.drafting.n_max
    assert knob_value(settings, "temperature") == settings.sampling.temperature
    assert knob_value(settings, "n_predict") == settings.n_predict
    changed = with_knob(settings, "top_k", 7)
    assert changed.sampling.top_k == 7
    assert changed.sampling.temperature == settings.sampling.temperature
    with pytest.raises(ConfigError):
        with_knob(settings, "p_min", 1.5)


def test_related_knobs_change_together() -> None:
    settings = GenerationSettings()
    # Lowering draft-max below the current draft-min is fine when draft-min moves too.
    raised = with_knobs(settings, {"draft_max": 8, "draft_min": 6})
    lowered = with_knobs(raised, {"draft_max": 2, "draft_min": 1})
    assert (lowered.drafting.n_max, lowered.drafting.n_min) == (2, 1)
    with pytest.raises(ConfigError, match="draft-min"):
        with_knobs(raised, {"draft_max": 2})


def test_generation_settings_round_trip_through_json_types() -> None:
    settings = GenerationSettings(
        n_predict=99,
        sampling=SamplingSettings(temperature=0.0, top_k=3, seed=42),
        stop_strings=("\n\n",),
    )
    settings = settings.with_changes(drafting=settings.drafting.__class__(DraftSource.NGRAM, 5))
    data = generation_settings_to_dict(settings)
    assert data["drafting"]["source"] == "ngram"
    assert generation_settings_from_dict(data) == settings


def test_generation_settings_from_dict_skips_unknown_and_rejects_invalid() -> None:
    data = generation_settings_to_dict(GenerationSettings())
    data["from_the_future"] = 1
    data["sampling"]["also_new"] = True
    assert generation_settings_from_dict(data) == GenerationSettings()
    data["sampling"]["top_k"] = "many"
    with pytest.raises(ConfigError):
        generation_settings_from_dict(data)
    with pytest.raises(ConfigError):
        generation_settings_from_dict({"drafting": {"n_max": 2, "n_min": 3}})


def test_pair_settings_round_trip() -> None:
    pair = PairSettings(with_knob(GenerationSettings(), "seed", 7), n_threads=3)
    assert PairSettings.from_dict(pair.to_dict()) == pair
    with pytest.raises(ConfigError):
        PairSettings.from_dict({"threads": 0})


def test_drafting_modes_are_described_changed_and_saved() -> None:
    from core.engine.config import Verification
    from core.settings.generation import ADAPTIVE, DRAFTING_MODES, VERIFICATION, with_drafting_mode

    for setting in DRAFTING_MODES:
        assert setting.description.endswith(".") and ". " not in setting.description
        assert setting.validate(setting.default) == setting.default
    defaults = GenerationSettings().drafting
    assert VERIFICATION.default == defaults.verification.value == "speculative"
    assert ADAPTIVE.default is defaults.adaptive is True
    assert set(VERIFICATION.choices) == {mode.value for mode in Verification}

    changed = with_drafting_mode(GenerationSettings(), verification="match", adaptive=False)
    assert changed.drafting.verification is Verification.MATCH
    assert changed.drafting.adaptive is False
    data = generation_settings_to_dict(changed)
    assert data["drafting"]["verification"] == "match" and data["drafting"]["adaptive"] is False
    assert generation_settings_from_dict(data) == changed
    assert PairSettings.from_dict(PairSettings(changed).to_dict()).generation == changed
    with pytest.raises(ConfigError):
        with_drafting_mode(GenerationSettings(), verification="guess")
    with pytest.raises(ConfigError):
        generation_settings_from_dict({"drafting": {"verification": "guess"}})
    with pytest.raises(ConfigError):
        generation_settings_from_dict({"drafting": {"adaptive": "yes"}})
