"""Command-line flags made from the settings metadata of the core's config dataclasses.

A flag's type, choices, default and help come from the field's ``core.settings.Setting``, so
the CLI, the app's forms and the validation agree on every setting without retyping it.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from diffusion_studio.core.settings import SettingField, setting_fields


def int_list(text: str) -> tuple[int, ...]:
    """"1,2,2" → (1, 2, 2)."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got '{text}'") from None


def _help(f: SettingField, default: Any) -> str:
    text = f.setting.help.replace("%", "%%")
    if default is None:
        return text
    shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
    return f"{text} (default: {shown})"


def add_setting_flags(
    parser: argparse.ArgumentParser,
    config: type | object,
    *,
    skip: Iterable[str] = (),
    required: Iterable[str] = (),
    defaults: dict[str, Any] | None = None,
    suppress: bool = False,
) -> list[SettingField]:
    """One flag per setting of ``config`` (a class, or an instance whose values are the defaults).

    ``required`` flags have no default; ``defaults`` overrides some defaults; with ``suppress`` a
    flag not given leaves no attribute, so the caller can tell what was asked for. Returns the
    fields that got a flag.
    """
    skip, required, overrides, added = set(skip), set(required), defaults or {}, []
    for f in setting_fields(config):
        if f.name in skip:
            continue
        default = overrides.get(f.name, getattr(config, f.name) if not isinstance(config, type) else f.default)
        if f.name in required:
            options: dict[str, Any] = {"dest": f.name, "required": True, "help": _help(f, None)}
        else:
            options = {"dest": f.name, "default": argparse.SUPPRESS if suppress else default, "help": _help(f, default)}
        if f.kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        else:
            options["type"] = int_list if f.kind is tuple else f.kind
            options["metavar"] = "N[,N…]" if f.kind is tuple else f.flags[0].lstrip("-").replace("-", "_").upper()
            if f.setting.choices is not None:
                options["choices"] = tuple(f.setting.choices)
                options.pop("metavar")
        parser.add_argument(*f.flags, **options)
        added.append(f)
    return added


def setting_values(args: argparse.Namespace, fields: Iterable[SettingField]) -> dict[str, Any]:
    """The values the parsed flags hold for these fields (only those given, after ``suppress``)."""
    return {f.name: getattr(args, f.name) for f in fields if hasattr(args, f.name)}
