"""Settings described once: a config dataclass's fields carry their label, help, limits and choices.

The GUI builds its forms from them, the CLI its flags, and ``check_settings`` validates any
config against them, so a label, a range or a default is written in one place:

    @dataclass(frozen=True)
    class DDIMOptions:
        eta: float = setting(0.0, "η", "0 is deterministic, 1 as noisy as DDPM with β̃_t", ge=0, step=0.1)
"""

from __future__ import annotations

import math
import numbers
import operator
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any

from diffusion_studio.core.errors import SettingError

SETTING = "diffusion_studio.setting"
"""The key of a field's metadata that holds its Setting."""


@dataclass(frozen=True)
class Setting:
    """How one field of a config is shown, asked for and checked."""

    label: str  # the form's label
    help: str  # the form's tooltip and the CLI's help text
    ge: float | None = None  # value ≥ ge
    gt: float | None = None  # value > gt
    le: float | None = None  # value ≤ le
    lt: float | None = None  # value < lt
    choices: Mapping[str, str] | None = None  # allowed values → their labels in a form
    choice_help: Mapping[str, str] | None = None  # allowed values → what each means (a form's item tooltips)
    step: float | None = None  # a spin box's step
    decimals: int | None = None  # digits a form shows after the point
    flag: str | tuple[str, ...] | None = None  # the CLI flag (and its aliases), when not --field-name


def setting(default: Any, label: str, help: str, **details: Any) -> Any:
    """A dataclass field with a default and its Setting (``details`` are Setting's other fields)."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple or a frozen value as a setting's default")
    return field(default=default, metadata={SETTING: Setting(label, help, **details)})


@dataclass(frozen=True)
class SettingField:
    """A config field with its Setting and its type, resolved."""

    name: str
    setting: Setting
    kind: type  # int, float, bool, str or tuple (of ints)
    optional: bool  # None is allowed
    default: Any

    @property
    def flags(self) -> tuple[str, ...]:
        """The CLI flag, then its aliases: --field-name unless the Setting names others."""
        flag = self.setting.flag or "--" + self.name.replace("_", "-")
        return (flag,) if isinstance(flag, str) else flag


def _resolve(annotation: Any) -> tuple[type, bool]:
    """(the base type, whether None is allowed) of ``int``, ``int | None``, ``tuple[int, ...]`` …"""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kinds = [a for a in args if a is not type(None)]
        base, _ = _resolve(kinds[0])
        return base, len(kinds) < len(args)
    origin = typing.get_origin(annotation)
    return (origin or annotation), False


def setting_fields(config: type | object) -> list[SettingField]:
    """The fields of a config class (or instance) that carry a Setting, in declaration order."""
    cls = config if isinstance(config, type) else type(config)
    hints = typing.get_type_hints(cls)
    found = []
    for f in fields(cls):
        if SETTING in f.metadata:
            kind, optional = _resolve(hints[f.name])
            found.append(SettingField(f.name, f.metadata[SETTING], kind, optional, _default(f)))
    return found


def _default(f: Field) -> Any:
    if f.default is not MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not MISSING else None


def problem(f: SettingField, value: Any) -> str | None:
    """Why ``value`` cannot be this setting, or None if it can."""
    s = f.setting
    if value is None:
        return None if f.optional else "must be given"
    if f.kind is bool:
        return None if isinstance(value, bool) else "must be true or false"
    if f.kind is str and not isinstance(value, str):
        return "must be text"
    if f.kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral if f.kind is int else numbers.Real):
            return "must be a whole number" if f.kind is int else "must be a number"
        if not math.isfinite(value):
            return "must be a finite number"
        limits = [(bound, test, sign) for bound, test, sign in
                  ((s.ge, operator.ge, "≥"), (s.gt, operator.gt, ">"), (s.le, operator.le, "≤"), (s.lt, operator.lt, "<"))
                  if bound is not None]
        if not all(test(value, bound) for bound, test, _ in limits):
            return "must be " + " and ".join(f"{sign} {_bound_text(bound)}" for bound, _, sign in limits)
    if s.choices is not None and value not in s.choices:
        return f"choose from {', '.join(map(str, s.choices))}"
    return None


def _bound_text(bound: float) -> str:
    """A limit as a person writes it: whole ones in full (2147483647, not 2.14748e+09)."""
    return str(int(bound)) if float(bound).is_integer() and abs(bound) < 1e16 else f"{bound:g}"


def check_settings(config: object) -> None:
    """Raise SettingError, naming the setting, for the first value its Setting does not allow."""
    for f in setting_fields(config):
        value = getattr(config, f.name)
        reason = problem(f, value)
        if reason is not None:
            raise SettingError(f.name, f"{reason}, got {value!r}")
