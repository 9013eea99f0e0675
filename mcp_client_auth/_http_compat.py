"""One ``Auth`` base class for httpx and httpx2, each where installed.

mcp >= 2 and FastMCP >= 4 use httpx2; most other code, and mcp 1.x, use httpx. Each library
refuses the other's ``Auth`` objects, so the provider inherits from both: the MRO is plain
(neither class has a metaclass or state), and the provider overrides every flow method.

httpx2 is not imported for it: a process that uses only httpx would pay for a library it never
calls. Where httpx2 is already imported, ``AuthBase`` has both bases from the start; where it is
not, a finder on ``sys.meta_path`` adds ``httpx2.Auth`` to the bases the moment httpx2 is
imported, before any httpx2 client can see a provider (existing providers included: ``isinstance``
follows the class's bases). Until then no httpx2 request, response or transport can exist, so
the helpers below look only at the libraries already imported.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

import httpx

__all__ = ["AuthBase", "libraries", "loaded_httpx2", "timeout_errors", "transport_errors"]


def loaded_httpx2() -> ModuleType | None:
    """httpx2 where this process has imported it (only then can its objects reach us)."""
    return sys.modules.get("httpx2")


def libraries() -> tuple[ModuleType, ...]:
    """httpx, and httpx2 where imported."""
    second = loaded_httpx2()
    return (httpx,) if second is None else (httpx, second)


def transport_errors() -> tuple[type[Exception], ...]:
    """Each imported library's ``TransportError`` (for ``except``)."""
    return tuple(library.TransportError for library in libraries())


def timeout_errors() -> tuple[type[Exception], ...]:
    return tuple(library.TimeoutException for library in libraries())


if TYPE_CHECKING:
    import httpx2 as _httpx2

    class AuthBase(httpx.Auth, _httpx2.Auth):  # type: ignore[misc]
        """Both libraries' Auth, so type checkers accept ``auth=`` in either client."""

else:
    AuthBase = type("AuthBase", (httpx.Auth,), {"__module__": __name__, "__slots__": ()})


def _add_httpx2_base(module: ModuleType) -> None:
    if module.Auth not in AuthBase.__bases__:
        AuthBase.__bases__ = (httpx.Auth, module.Auth)


class _Httpx2Import:
    """A ``sys.meta_path`` finder for httpx2 alone: finds it as the other finders would, and
    once it has been executed adds its ``Auth`` to :data:`AuthBase`'s bases."""

    @classmethod
    def find_spec(cls, name: str, path: Sequence[str] | None = None, target: Any = None) -> Any:
        if name != "httpx2":
            return None
        if cls in sys.meta_path:  # one import of httpx2 per process: step aside for good
            sys.meta_path.remove(cls)
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        run = getattr(loader, "exec_module", None)
        if run is None:  # pragma: no cover - a legacy loader: take httpx2 at once instead
            return spec

        def exec_module(module: ModuleType) -> None:
            run(module)
            _add_httpx2_base(module)

        loader.exec_module = exec_module
        return spec


_already = loaded_httpx2()
if _already is not None:
    _add_httpx2_base(_already)
else:
    sys.meta_path.insert(0, _Httpx2Import)
