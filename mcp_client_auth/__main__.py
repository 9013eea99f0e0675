"""``python -m mcp_client_auth``: the same tool as the ``mcp-client-auth`` command.

Kept to the one import, so ``python -m mcp_client_auth token URL`` costs what the console
script costs.
"""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
