"""``TokenStore.default_exists()`` on a folder it cannot look into.

What is proved: an OS error while looking (a folder this user may not enter, a name the file
system refuses) is a ``StorageError`` naming the folder and the reason, not a bare
``PermissionError``/``OSError``; and looking still creates nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mcp_client_auth import StorageError, TokenStore


@pytest.mark.skipif(os.geteuid() == 0, reason="root may look into any folder")
def test_a_folder_this_user_cannot_enter_is_a_storage_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        with pytest.raises(StorageError) as caught:
            TokenStore.default_exists(locked / "store")
    finally:
        locked.chmod(0o700)
    message = str(caught.value)
    assert str(locked / "store") in message
    assert "Permission denied" in message
    assert isinstance(caught.value.__cause__, PermissionError)
    assert list(locked.iterdir()) == []


def test_a_name_the_file_system_refuses_is_a_storage_error(tmp_path: Path) -> None:
    parent = tmp_path / "parent"
    parent.mkdir()
    folder = parent / ("x" * 300)  # longer than any file system's name limit
    with pytest.raises(StorageError) as caught:
        TokenStore.default_exists(folder)
    message = str(caught.value)
    assert str(folder) in message
    assert "File name too long" in message
    assert isinstance(caught.value.__cause__, OSError)
    assert list(parent.iterdir()) == []


def test_a_missing_folder_is_simply_absent(tmp_path: Path) -> None:
    parent = tmp_path / "parent"
    parent.mkdir()
    assert TokenStore.default_exists(parent / "never") is False
    assert list(parent.iterdir()) == []
