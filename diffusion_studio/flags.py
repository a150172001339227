"""Command-line flags made from the settings metadata of the core's config dataclasses.

A flag's type, choices, default and help come from the field's ``core.settings.Setting``, so
the CLI, the app's forms and the validation agree on every setting without retyping it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from diffusion_studio.core.settings import Setting, SettingField, problem, setting_fields


def int_list(text: str) -> tuple[int, ...]:
    """"1,2,2" → (1, 2, 2)."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}") from None


def limited(kind: type, **limits: float) -> Callable[[str], Any]:
    """An argparse type for a flag made by hand: the text as ``kind`` (int or float), refused
    unless within ``limits`` (Setting's ge, gt, le, lt), in the words a setting's own check uses."""
    check = SettingField("value", Setting("", "", **limits), kind, False, None)

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'a whole number' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        reason = problem(check, value)
        if reason is not None:
            raise argparse.ArgumentTypeError(f"{reason}, got {value!r}")
        return value

    return convert


def _shown(default: Any) -> str:
    return ",".join(map(str, default)) if isinstance(default, tuple) else str(default)


def _argument(f: SettingField, help: str, **options: Any) -> dict[str, Any]:
    """add_argument's keywords for a setting: its type (or a switch), choices and help."""
    options = {"dest": f.name, "help": help.replace("%", "%%"), **options}
    if f.kind is bool:
        options["action"] = argparse.BooleanOptionalAction
    elif f.setting.choices is not None:
        options.update(type=f.kind, choices=tuple(f.setting.choices))
    else:
        options.update(type=int_list if f.kind is tuple else f.kind,
                       metavar="N[,N…]" if f.kind is tuple else f.flags[0].lstrip("-").replace("-", "_").upper())
    return options


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
            options = _argument(f, f.setting.help, required=True)
        else:
            help = f.setting.help if default is None else f"{f.setting.help} (default: {_shown(default)})"
            options = _argument(f, help, default=argparse.SUPPRESS if suppress else default)
        parser.add_argument(*f.flags, **options)
        added.append(f)
    return added


def add_option_flags(parser: argparse.ArgumentParser, owners: Mapping[str, type]) -> None:
    """One flag per option name across several options classes (label → class, e.g. each
    sampler's), given or absent (suppressed). Its help names every owner with its own default,
    so an option that two samplers share with different defaults says so."""
    by_name: dict[str, list[tuple[str, SettingField]]] = {}
    for label, options in owners.items():
        for f in setting_fields(options):
            by_name.setdefault(f.name, []).append((label, f))
    for named in by_name.values():
        f = named[0][1]
        takers = "; ".join(f"{label}: default {_shown(g.default)}" for label, g in named)
        parser.add_argument(*f.flags, **_argument(f, f"{f.setting.help} ({takers})", default=argparse.SUPPRESS))


def setting_values(args: argparse.Namespace, fields: Iterable[SettingField]) -> dict[str, Any]:
    """The values the parsed flags hold for these fields (only those given, after ``suppress``)."""
    return {f.name: getattr(args, f.name) for f in fields if hasattr(args, f.name)}
