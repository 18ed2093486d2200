"""A typed setting: key, default, description and the rule that validates it.

One ``Setting`` describes one value the user can change. The store validates
every value it reads or writes against it, and the window builds its widgets
and tooltips from the same description, so a knob is explained in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from core.errors import ConfigError

T = TypeVar("T", bool, int, float, str)


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One typed, documented, validated setting.

    Attributes:
        key: the name it is stored under.
        default: its value until the user changes it; also fixes its type.
        label: a short name for a form.
        description: one sentence for a tooltip: what it does.
        minimum / maximum: inclusive bounds for numbers.
        choices: the allowed values, when only a few are.
    """

    key: str
    default: T
    label: str
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[T, ...] = ()

    def __post_init__(self) -> None:
        # A default the rule itself refuses is a programming error: fail at import.
        self.validate(self.default)

    @property
    def value_type(self) -> type:
        return type(self.default)

    def validate(self, value: Any) -> T:
        """Return ``value`` as this setting's type, or raise ConfigError saying why not."""
        # JSON has one number type: a whole number where a float is expected is fine.
        if self.value_type is float and type(value) is int:
            value = float(value)
        self._check(value)
        return value

    def _check(self, value: Any) -> None:
        expected = self.value_type
        # Exact type: bool is an int in Python, yet true must not pass for a thread count.
        if type(value) is not expected:
            raise ConfigError(f"{self.key}: expected {expected.__name__}, got {value!r}")
        if self.choices and value not in self.choices:
            allowed = ", ".join(str(choice) for choice in self.choices)
            raise ConfigError(f"{self.key}: {value!r} is not one of {allowed}")
        number: Any = value  # a fresh name: mypy narrowed ``value`` to object above
        if self.minimum is not None and number < self.minimum:
            raise ConfigError(f"{self.key}: {value!r} is below the minimum {self.minimum}")
        if self.maximum is not None and number > self.maximum:
            raise ConfigError(f"{self.key}: {value!r} is above the maximum {self.maximum}")
