"""Plain views: what domain code hands to transports instead of ORM rows."""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    V = TypeVar("V", bound=DataclassInstance)
else:
    V = TypeVar("V")


def view_of(view: type[V], row: object) -> V:
    """A `view` dataclass filled from the attributes of `row` with the same names.

    A view is a copy: a transport holding one can neither change the row nor trigger a lazy load
    after the session closed.
    """
    return view(**{f.name: getattr(row, f.name) for f in fields(view)})
