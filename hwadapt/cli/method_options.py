"""The settings of every registered method, offered as options of ``hwadapt adapt``.

Each field of a method's settings dataclass becomes ``--field-name`` (the field's
``help`` metadata its help); an option left out takes the chosen method's own default,
and an option the chosen method does not have is refused naming its settings
(:meth:`hwadapt.adapt.registry.Method.settings`). A new method's settings reach the
command line without touching it.
"""
from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

import typer

from hwadapt.adapt.registry import METHODS


def _plain_type(hint: Any) -> Any:
    """``int`` of ``int | None``; the hint itself otherwise."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        return rest[0] if len(rest) == 1 else str
    return hint


def settings_parameters() -> list[inspect.Parameter]:
    """One keyword parameter per settings field of every registered method."""
    found: dict[str, tuple[Any, str, list[str]]] = {}
    for method in METHODS.values():
        hints = typing.get_type_hints(method.Settings)
        for field in dataclasses.fields(method.Settings):
            default = "" if field.default is None else f" {field.default}"
            entry = found.setdefault(field.name, (_plain_type(hints[field.name]), field.metadata.get("help", ""), []))
            entry[2].append(f"{method.name}{default}")
    return [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=typing.Optional[kind],  # noqa: UP007
                              default=typer.Option(None, help=f"{text} ({'; '.join(owners)})",
                                                   rich_help_panel="Method settings"))
            for name, (kind, text, owners) in sorted(found.items())]


def with_settings(command: Callable[..., Any]) -> Callable[..., Any]:
    """``command`` with every method's settings added to its signature; it receives them
    in a ``settings`` dict (only the ones given)."""
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "settings"]
    extra = settings_parameters()
    names = {p.name for p in extra}

    def wrapper(**kwargs: Any) -> Any:
        settings = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
        return command(**kwargs, settings=settings)

    wrapper.__signature__ = inspect.Signature([*own, *extra])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {}
    wrapper.__doc__, wrapper.__name__ = command.__doc__, command.__name__
    return wrapper
