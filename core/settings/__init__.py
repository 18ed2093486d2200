"""Typed, validated, persisted settings: the app's, and those tuned per model pair."""

from core.settings.app_settings import (
    APP_SETTINGS,
    MARKDOWN_DEFAULT,
    SHOW_REJECTED_DRAFTS,
    THEME_DARK,
    THEME_LIGHT,
    THEME_MODE,
    THEME_SYSTEM,
)
from core.settings.generation import (
    DRAFTING_KNOBS,
    GENERATION_KNOBS,
    N_PREDICT,
    SAMPLING_KNOBS,
    THREADS,
    PairSettings,
    generation_settings_from_dict,
    generation_settings_to_dict,
    knob_value,
    with_knob,
    with_knobs,
)
from core.settings.load_request import LoadRequest, model_config_from_dict, model_config_to_dict
from core.settings.pair_keys import PairKey, model_identity, pair_key
from core.settings.schema import Setting
from core.settings.store import ModelOptions, SettingsStore, shared_settings

__all__ = [
    "APP_SETTINGS",
    "DRAFTING_KNOBS",
    "GENERATION_KNOBS",
    "MARKDOWN_DEFAULT",
    "N_PREDICT",
    "SAMPLING_KNOBS",
    "SHOW_REJECTED_DRAFTS",
    "THEME_DARK",
    "THEME_LIGHT",
    "THEME_MODE",
    "THEME_SYSTEM",
    "THREADS",
    "LoadRequest",
    "ModelOptions",
    "PairKey",
    "PairSettings",
    "Setting",
    "SettingsStore",
    "generation_settings_from_dict",
    "generation_settings_to_dict",
    "knob_value",
    "model_config_from_dict",
    "model_config_to_dict",
    "model_identity",
    "pair_key",
    "shared_settings",
    "with_knob",
    "with_knobs",
]
