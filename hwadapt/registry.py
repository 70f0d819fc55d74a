"""A typed registry: the one place where the members of a concept (op kinds, block kinds,
families, methods) are found by name, so that a new member is one new module that
registers itself, and an unknown name is a one-line error listing the known ones."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

from hwadapt.errors import HwadaptError

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """Members of one concept by name. ``what`` names the concept in errors ("op kind");
    ``error`` is the exception an unknown name raises."""

    def __init__(self, what: str, error: type[HwadaptError]) -> None:
        self.what, self.error = what, error
        self._members: dict[str, T] = {}

    def register(self, name: str, member: T) -> T:
        self._members[name] = member
        return member

    def instance(self, cls: type[T]) -> type[T]:
        """Class decorator: register one instance of ``cls`` under its ``name``."""
        self.register(cls.name, cls())  # type: ignore[attr-defined]
        return cls

    def __getitem__(self, name: str) -> T:
        try:
            return self._members[name]
        except KeyError:
            raise self.error(f"unknown {self.what} {name!r}; known: {', '.join(sorted(self._members))}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._members

    def get(self, name: str, default: T | None = None) -> T | None:
        return self._members.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)
