"""A private, real ``redis-server`` on 127.0.0.1 for the tests (no persistence).

Used by ``tests/store/conftest.py`` and ``tests/integration/test_refresh_race.py``. Without the
Debian package ``redis-server`` the tests FAIL with a message saying what to install: a Redis
test that silently does not run proves nothing.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

LOOPBACK = "127.0.0.1"
APT_HINT = "the Redis tests need a real Redis server: apt-get install -y redis-server"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


@dataclass
class RedisServer:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    password: str | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{LOOPBACK}:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


def start_redis_server(workdir: Path, *, password: str | None = None) -> RedisServer:
    """Start redis-server on a free loopback port and wait until it answers PING."""
    binary = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if binary is None:
        pytest.fail(f"redis-server not found: {APT_HINT}", pytrace=False)
    import redis

    log = workdir / "redis.log"
    for _attempt in range(3):  # a free port can be taken between choosing and binding it
        port = _free_port()
        argv = [binary, "--bind", LOOPBACK, "--port", str(port), "--save", "", "--appendonly"]
        argv += ["no", "--dir", str(workdir), "--logfile", str(log)]
        if password:
            argv += ["--requirepass", password]
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        server = RedisServer(process, port, log, password)
        deadline = time.monotonic() + 60  # generous: a busy machine starts it slowly
        while process.poll() is None and time.monotonic() < deadline:
            client = redis.Redis(
                host=LOOPBACK, port=port, password=password, socket_connect_timeout=5
            )
            try:
                # ours, not another server that took the port between choosing and binding it
                if client.info("server")["process_id"] == process.pid:
                    return server
                break
            except (redis.ConnectionError, redis.TimeoutError):
                time.sleep(0.02)
            finally:
                client.close()
        server.stop()
    text = log.read_text(errors="replace") if log.exists() else ""
    pytest.fail(f"redis-server did not start:\n{text[-2000:]}", pytrace=False)
