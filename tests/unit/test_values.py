"""Value classes (``values.py``): what a frozen dataclass gave, fields in constructor order."""

from __future__ import annotations

import copy
import pickle
from dataclasses import FrozenInstanceError

import pytest

from mcp_client_auth import KeyringProbe, Protection
from mcp_client_auth.urls import split_url
from mcp_client_auth.values import set_field


def test_the_repr_lists_the_fields_in_constructor_order() -> None:
    """As the dataclasses did, whatever order ``__slots__`` is kept in."""
    assert repr(Protection("key file", "/k", "n")) == (
        "Protection(kind='key file', where='/k', note='n')"
    )
    assert repr(KeyringProbe("works", "b", "r")) == (
        "KeyringProbe(verdict='works', backend='b', reason='r')"
    )
    assert repr(split_url("https://h:8443/p?q=1")) == (
        "SplitUrl(scheme='https', host='h', port=8443, path='/p', query='q=1')"
    )


class _Labelled(Protection):
    """A user's subclass that adds a field of its own."""

    __slots__ = ("label",)
    label: str

    def __init__(self, kind: str, where: str, note: str = "", label: str = "") -> None:
        super().__init__(kind, where, note)  # type: ignore[arg-type]
        set_field(self, "label", label)


def test_a_subclass_with_slots_of_its_own_keeps_its_bases_fields() -> None:
    first, second = _Labelled("keyring", "A", label="x"), _Labelled("key file", "B", label="x")
    assert first != second
    assert first == _Labelled("keyring", "A", label="x")
    assert repr(first) == "_Labelled(kind='keyring', where='A', note='', label='x')"
    assert pickle.loads(pickle.dumps(first)) == first
    assert copy.deepcopy(first) == first
    assert first.replace(where="B") == _Labelled("keyring", "B", label="x")
    with pytest.raises(FrozenInstanceError):
        first.label = "y"  # type: ignore[misc]
