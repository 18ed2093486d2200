"""What to load: a target, maybe a draft model, and where drafts come from."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.engine.config import DraftSource, ModelConfig
from core.errors import ConfigError
from core.settings.pair_keys import pair_key


def model_config_to_dict(config: ModelConfig) -> dict[str, Any]:
    data = dataclasses.asdict(config)
    data["path"] = str(config.path)
    return data


def model_config_from_dict(data: Any) -> ModelConfig:
    """Rebuild a ModelConfig; unknown fields are skipped, invalid values raise ConfigError."""
    if not isinstance(data, dict) or not isinstance(data.get("path"), str):
        raise ConfigError(f"model settings need a path, got {data!r}")
    names = {f.name for f in dataclasses.fields(ModelConfig)}
    fields = {key: value for key, value in data.items() if key in names}
    fields["path"] = Path(fields["path"])
    for name in ("n_gpu_layers", "n_ctx", "n_batch", "n_threads"):
        if name in fields and (type(fields[name]) is not int):
            raise ConfigError(
                f"model settings: {name} must be a whole number, got {fields[name]!r}"
            )
    try:
        return ModelConfig(**fields)
    except TypeError as exc:
        raise ConfigError(f"invalid model settings: {exc}") from exc


@dataclass(frozen=True)
class LoadRequest:
    """A pair to load, as the model picker asks for it.

    Attributes:
        target: the model whose output the user gets.
        draft: the draft model; only with ``draft_source`` MODEL.
        draft_source: draft model, n-gram prompt lookup, or none (plain decoding).
    """

    target: ModelConfig
    draft: ModelConfig | None = None
    draft_source: DraftSource = DraftSource.MODEL

    def __post_init__(self) -> None:
        object.__setattr__(self, "draft_source", DraftSource(self.draft_source))
        if self.draft_source is DraftSource.MODEL and self.draft is None:
            raise ConfigError("the draft source 'draft model' needs a draft model")
        if self.draft_source is not DraftSource.MODEL and self.draft is not None:
            # A loaded but unused draft would only hold memory.
            raise ConfigError(f"draft source '{self.draft_source.value}' takes no draft model")

    @property
    def pair_key(self) -> str:
        """The key this pair's settings are saved under (see ``pair_key``)."""
        draft_path = self.draft.path if self.draft else None
        return pair_key(self.target.path, draft_path, self.draft_source)

    def describe(self) -> str:
        """A short line for the user, e.g. ``target.gguf + draft.gguf``."""
        if self.draft is not None:
            return f"{self.target.path.name} + {self.draft.path.name}"
        if self.draft_source is DraftSource.NGRAM:
            return f"{self.target.path.name} + n-gram lookup"
        return f"{self.target.path.name} (no drafting)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": model_config_to_dict(self.target),
            "draft": model_config_to_dict(self.draft) if self.draft else None,
            "draft_source": self.draft_source.value,
        }

    @classmethod
    def from_dict(cls, data: Any) -> LoadRequest:
        if not isinstance(data, dict):
            raise ConfigError(f"load request: expected an object, got {data!r}")
        draft = data.get("draft")
        try:
            source = DraftSource(data.get("draft_source", DraftSource.MODEL.value))
        except ValueError as exc:
            raise ConfigError(f"unknown draft source {data.get('draft_source')!r}") from exc
        return cls(
            target=model_config_from_dict(data.get("target")),
            draft=model_config_from_dict(draft) if draft is not None else None,
            draft_source=source,
        )
