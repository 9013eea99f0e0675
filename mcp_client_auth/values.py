"""Immutable value classes that generate no code at import.

What ``@dataclass(frozen=True)`` gives (fields, equality and hash over them, no assignment
after ``__init__``, a repr), written once here instead of generated per class: on Python 3.11
a dataclass compiles every method it makes with ``exec`` when its module is imported, half a
millisecond a class, which every process that reconnects with a stored token would pay.

A value is not a tuple, unlike a named tuple: it cannot be iterated, unpacked or encoded as a
JSON array, so a field named in ``_hidden`` (a secret, or a record that holds one) reaches
text only through the repr, which leaves it out. (A named tuple would also compile its
constructor, and under postponed annotations every field's annotation, at import.)
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from typing import Any, ClassVar, TypeVar

__all__ = ["Value", "set_field"]

V = TypeVar("V", bound="Value")

set_field = object.__setattr__  # how __init__ fills the slots of a value that refuses assignment


class Value:
    """An immutable value: fields in ``__slots__`` (each an ``__init__`` parameter of the same
    name), equality and hash over them. Fields named in ``_hidden`` are left out of the repr.

    The fields are the slots of the class and its bases, in the order of ``__init__``'s
    parameters where those name them all (so the repr reads as the constructor call does,
    although ``__slots__`` itself is kept sorted)."""

    __slots__: tuple[str, ...] = ()
    _hidden: ClassVar[frozenset[str]] = frozenset()
    _field_names: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        names = [n for klass in reversed(cls.__mro__) for n in klass.__dict__.get("__slots__", ())]
        code = getattr(cls.__init__, "__code__", None)
        if code is not None:
            params = code.co_varnames[1 : code.co_argcount + code.co_kwonlyargcount]
            if sorted(params) == sorted(names):
                names = list(params)
        cls._field_names = tuple(names)

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._field_names)

    def replace(self: V, **changes: Any) -> V:
        """A copy with ``changes`` (what :func:`dataclasses.replace` does for a dataclass)."""
        fields = dict(zip(self._field_names, self._fields(), strict=True))
        return type(self)(**{**fields, **changes})

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Value)
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash((type(self), self._fields()))

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        # copy, deepcopy and pickle would restore the slots by assignment, which is refused
        return (_rebuild, (type(self), self._fields()))

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}=..." if name in self._hidden else f"{name}={getattr(self, name)!r}"
            for name in self._field_names
        )
        return f"{type(self).__name__}({shown})"


def _rebuild(cls: type[Value], fields: tuple[Any, ...]) -> Value:
    """A value made again from its fields (see ``Value.__reduce__``)."""
    value = object.__new__(cls)
    for name, field_value in zip(cls._field_names, fields, strict=True):
        set_field(value, name, field_value)
    return value
