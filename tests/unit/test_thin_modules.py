"""``metadata`` and ``untrusted`` name the modules that do the work, and load only what is used.

Code and tests import from the two thin modules; each name must be the very object of the
module it lives in, and asking for one must not load the modules behind the others (a process
that reconnects needs the URL rules, never the metadata document checks).
"""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

THIN = ("mcp_client_auth.metadata", "mcp_client_auth.untrusted")
HOMES = [
    f"mcp_client_auth.{name}"
    for name in (
        "challenges",
        "urls",
        "url_rules",
        "well_known",
        "metadata_documents",
        "server_json",
        "server_text",
        "error_answers",
    )
]


@pytest.mark.parametrize("thin", THIN)
def test_every_listed_name_is_the_object_of_its_home_module(thin: str) -> None:
    module = importlib.import_module(thin)
    assert module.__all__, thin
    homes = [importlib.import_module(home) for home in HOMES]
    for name in module.__all__:
        found = [home for home in homes if name in home.__all__]
        assert len(found) == 1, f"{name} is public in {[h.__name__ for h in found]}"
        assert getattr(module, name) is getattr(found[0], name), name
    assert set(module.__all__) <= set(dir(module))


@pytest.mark.parametrize("thin", THIN)
def test_an_unknown_name_is_an_attribute_error(thin: str) -> None:
    module = importlib.import_module(thin)
    with pytest.raises(AttributeError, match="no_such_name"):
        module.no_such_name  # noqa: B018


def test_one_name_loads_only_its_own_module() -> None:
    code = (
        "import sys\n"
        "from mcp_client_auth.metadata import UrlRules\n"
        "from mcp_client_auth.untrusted import server_number\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('mcp_client_auth'))))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(run.stdout.split())
    assert {"mcp_client_auth.url_rules", "mcp_client_auth.server_json"} <= loaded
    unused = {
        "mcp_client_auth.challenges",
        "mcp_client_auth.well_known",
        "mcp_client_auth.metadata_documents",
        "mcp_client_auth.error_answers",
    }
    assert not loaded & unused, sorted(loaded & unused)
