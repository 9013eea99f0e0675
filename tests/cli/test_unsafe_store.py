"""The CLI with a store folder that is not safely the user's own.

What is proved: every command that uses the store refuses it with one line on stderr naming the
folder, its owner and mode and the fix, exit code 1, nothing on stdout and no traceback; and
``doctor`` still reports the folder's modes (and exits 1) instead of refusing to look.
"""

from __future__ import annotations

import os
import shlex

import pytest
from demo_servers import DemoServers

from .conftest import CLI

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.name != "posix", reason="POSIX owners and modes"),
]

NOBODY = 65534


@pytest.mark.parametrize("unsafe", ["world-writable", "another-owner"])
def test_a_store_folder_others_control_is_one_clear_line(
    cli: CLI, demo: DemoServers, unsafe: str
) -> None:
    assert cli.login(demo.mcp_url).returncode == 0
    if unsafe == "world-writable":
        os.chmod(cli.home, 0o777)
        shown = "mode 777"
    else:
        os.chown(cli.home, NOBODY, -1)
        shown = f"owner uid {NOBODY}"
    for args in (["token", demo.mcp_url], ["status"], ["logout", demo.mcp_url]):
        run = cli(*args)
        assert (run.returncode, run.stdout) == (1, ""), run.output
        [line] = run.stderr.splitlines()
        assert line.startswith("error: refusing the token store folder"), line
        assert str(cli.home) in line and shown in line, line
        assert f"chmod 700 {shlex.quote(str(cli.home))}" in line, line

    run = cli("doctor")
    assert run.returncode == 1, run.output
    if unsafe == "world-writable":
        assert f"{cli.home}: folder mode 777, should be 700" in run.stdout, run.stdout
    else:
        assert f"{cli.home} belongs to another user (uid {NOBODY})" in run.stdout, run.stdout
    assert "The store cannot be opened: refusing the token store folder" in run.stdout

    os.chown(cli.home, os.geteuid(), -1)
    os.chmod(cli.home, 0o700)  # the fix the error names
    run = cli("token", demo.mcp_url)
    assert run.returncode == 0, run.output
