"""The test servers' shared parts: every fake or real server a test starts is built from these.

- :mod:`.processes`: a server in a process of its own (the real authorization server, its
  protected resource, the integration MCP server, the interop servers): start, log, wait, stop.
- :mod:`.in_thread`: an ASGI app served by uvicorn in a thread of the test's process.
- :mod:`.sdk_provider`: the in-memory provider behind the ``mcp`` SDK's authorization-server
  routes (``tests/integration/sdk_auth_server.py``, ``tests/interop/py_servers.py``).
- :mod:`.seen`: a request as a fake server saw it (``tests/unit/fake_servers.py``,
  ``tests/hardening/hostile.py``).
"""
