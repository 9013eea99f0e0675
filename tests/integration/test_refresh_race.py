"""One refresh across processes, and a restart with no login, against the REAL authorization server.

oidc-provider (tests/realas, started by ``start_realas`` in tests/conftest.py) rotates refresh
tokens and revokes the whole grant when a rotated one is used again. So when 8 processes find
the same expired token, only one may refresh: the others must wait for it (the store's lock)
and then read its tokens from the store. The control runs the same race with the lock taken
out (a store built with a no-op ``lock=``) and gets ``invalid_grant``: the test can fail. The
control forces its race: each child waits at a file barrier (a file per child in a shared
folder) after it read the store and before it refreshes or logs in, so no child acts before all
have seen the old state, on a quiet machine as on a busy one. The barrier is in the control
only: with the lock, the children must not wait for each other inside it.

The access token expires in the children only: they run with a clock 400 s ahead of the
server's 300 s token lifetime, so no test waits for real time to pass. Refreshes are counted in
the authorization server's own log (``AS_LOG_EVENTS=1``), and every request a child sends goes
through its httpx client's event hook.

The same holds for a login: 8 processes with no stored tokens, each with a login that notes
itself in a file, make one login; the others wait for it and use its tokens (with the control).

The Redis variant uses a real redis-server (tests/store/redis_server.py); without Debian's
``redis-server`` it fails, saying what to install.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.fernet import Fernet

from mcp_client_auth import OAuthClientProvider, TokenStore

from ..store.redis_server import start_redis_server

if TYPE_CHECKING:
    from tests.conftest import RealStack, StartRealAS

pytestmark = pytest.mark.integration

# dpop=False throughout: these tests are about refresh-token rotation, which is the same with
# DPoP or without, and Bearer keeps each child's requests to what the tests count. (With the
# default, dpop=None, the provider would use Bearer here too: tests/realas/rs_server.py offers
# only the Bearer scheme.)
PROCESSES = 8
AT_TTL = "300"  # longer than the provider's 60 s leeway: a fresh token is valid
AHEAD = 400.0  # the children's clock: past the stored token's expiry, within the new one's

ROOT = Path(__file__).resolve().parents[2]

# In each child: every request sent, the provider's own (``transport=``) and the caller's.
RECORDING = """sent = []

class Recording(httpx.HTTPTransport):
    def handle_request(self, request):
        sent.append(f"{request.method} {request.url}")
        return super().handle_request(request)

recording = Recording()
"""

CHILD = textwrap.dedent(
    """
    import contextlib, hashlib, json, os, sys, time
    import httpx
    from mcp_client_auth import OAuthClientProvider, TokenStore

    kind = sys.argv[1]
    if kind == "redis":
        import mcp_client_auth.store.redis_store  # the slow part, before the race
    from tests.conftest import follow_to_redirect_uri
    print("imported", flush=True)
    where, resource, lock, ahead, logins, gate, processes = json.loads(sys.stdin.readline())

    def all_at_the_gate():
        # The control's barrier: each child has read the store and is about to act on what it
        # read (refresh, or log in); none acts before all are here, so the race the lock
        # prevents happens every time, however quiet or busy the machine is.
        open(os.path.join(gate, str(os.getpid())), "x").close()
        deadline = time.monotonic() + 45  # under race()'s 60 s: a missing child is named
        while len(os.listdir(gate)) < processes:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(os.listdir(gate))} children reached the gate")
            time.sleep(0.01)

    def login(authorization_url):
        if lock == "none":
            all_at_the_gate()
        # the browser's part (INTERACTION_MODE=auto), noted in the shared file `logins`
        with open(logins, "a") as noted:
            noted.write(f"{os.getpid()}\\n")
        return follow_to_redirect_uri(authorization_url)

    @contextlib.asynccontextmanager
    async def no_lock(_resource):
        yield

    store = TokenStore.default(where) if kind == "disk" else TokenStore.redis(where)
    if lock == "none":  # the control: the same store without its cross-process lock
        store = TokenStore(
            store.kv, lock=no_lock, description=store.description, protection=store.protection
        )
    {RECORDING}

    class AtTheGate(Recording):
        def handle_request(self, request):
            if b"grant_type=refresh_token" in request.content:
                all_at_the_gate()
            return super().handle_request(request)

    if lock == "none":  # the control: every child sends its refresh together
        recording = AtTheGate()
    provider = OAuthClientProvider(
        resource,
        store=store,
        interactive=logins is not None,  # no login: only a refresh may happen
        login=login if logins is not None else None,
        clock=lambda: time.time() + ahead,
        dpop=False,
        transport=recording,
    )
    client = httpx.Client(auth=provider, timeout=60, transport=recording)
    print("ready", flush=True)
    sys.stdin.readline()  # start together
    try:
        response = client.post(resource, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        token = provider.tokens.access_token if provider.tokens else ""
        result = {
            "status": response.status_code,
            "token": hashlib.sha256(token.encode()).hexdigest()[:16],
        }
    except Exception as exc:
        result = {"error": type(exc).__name__, "message": str(exc)[:300]}
    result["sent"] = sent
    print(json.dumps(result), flush=True)
    """
).replace("{RECORDING}", RECORDING)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class Racers:
    """``PROCESSES`` child processes, started early so that their imports overlap the servers'
    start and the login; :meth:`race` tells them the store and releases them together."""

    def __init__(self, kind: str, processes: int = PROCESSES) -> None:
        self.count = processes
        self.gates: list[Path] = []
        self.children = [
            subprocess.Popen(
                [sys.executable, "-c", CHILD, kind],
                cwd=ROOT,  # the children import tests.conftest
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(processes)
        ]

    def _expect(self, word: str) -> None:
        for proc in self.children:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            if line != word:
                proc.kill()
                pytest.fail(
                    f"a child said {line!r}, not {word!r}:\n{proc.communicate()[1][-3000:]}"
                )

    def _tell(self, line: str) -> None:
        for proc in self.children:
            assert proc.stdin is not None
            proc.stdin.write(line + "\n")
            proc.stdin.flush()

    def race(
        self, where: str, resource: str, *, lock: str = "store", logins: Path | None = None
    ) -> list[dict[str, Any]]:
        """Release the children on ``resource`` with the store at ``where``. Without
        ``logins``: no login, a clock ``AHEAD`` (the stored token has expired). With it: each
        child may log in, noting its pid in that file, on the real clock."""
        self._expect("imported")
        ahead = AHEAD if logins is None else 0.0
        gate = Path(tempfile.mkdtemp(prefix="gate-"))
        self.gates.append(gate)
        config = [where, resource, lock, ahead, logins and str(logins), str(gate), self.count]
        self._tell(json.dumps(config))
        self._expect("ready")
        self._tell("go")
        results = []
        for proc in self.children:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err[-3000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
        if lock == "none":  # the control raced for sure: every child stood at the gate
            assert len(os.listdir(gate)) == self.count, results
        return results

    def kill(self) -> None:
        for proc in self.children:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        for gate in self.gates:
            shutil.rmtree(gate, ignore_errors=True)


@pytest.fixture
def racers() -> Iterator[Callable[[str], Racers]]:
    started: list[Racers] = []

    def start(kind: str) -> Racers:
        started.append(Racers(kind))
        return started[-1]

    yield start
    for group in started:
        group.kill()


def grants(stack: RealStack) -> list[str]:
    """Each token request the AS answered: its grant type, with ``!error`` when refused."""
    found = []
    for event in stack.events():
        if event.get("event") == "grant.success":
            found.append(event["grant_type"])
        elif event.get("event") == "grant.error":
            found.append(f"{event['grant_type']}!{event.get('error')}")
    return found


@pytest.fixture
def store_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stores' key for this process and its children (no keyring, no key file)."""
    monkeypatch.setenv("MCP_CLIENT_AUTH_KEY", Fernet.generate_key().decode())


@pytest.fixture
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = start_redis_server(tmp_path_factory.mktemp("redis"))
    yield server.url
    server.stop()


async def log_in(stack: RealStack, store: TokenStore, login: Callable[[str], str]) -> str:
    """One interactive login (INTERACTION_MODE=auto), kept in ``store``; the access token."""
    provider = OAuthClientProvider(stack.resource, store=store, login=login, dpop=False)
    tokens = await provider.aget_token()
    assert grants(stack) == ["authorization_code"]
    return tokens.access_token


def check_one_refresh(stack: RealStack, results: list[dict[str, Any]], first: str) -> None:
    errors = [r for r in results if "error" in r or r["status"] != 200]
    assert not errors, errors
    assert len({r["token"] for r in results}) == 1  # every process uses the one new token
    assert results[0]["token"] != token_hash(first)
    assert grants(stack) == ["authorization_code", "refresh_token"]  # exactly one refresh
    token_endpoint = stack.as_metadata()["token_endpoint"]
    refreshers = [r for r in results if f"POST {token_endpoint}" in r["sent"]]
    assert len(refreshers) == 1
    for r in results:  # no discovery, no registration: straight from the store
        assert all(s in (f"POST {token_endpoint}", f"POST {stack.resource}") for s in r["sent"])


def check_the_race_is_lost(stack: RealStack, results: list[dict[str, Any]]) -> None:
    refused = [g for g in grants(stack) if g == "refresh_token!invalid_grant"]
    failed = [r for r in results if "error" in r]
    assert refused, grants(stack)  # a rotated refresh token was used again
    assert failed, results
    assert {r["error"] for r in failed} <= {"LoginRequiredError", "TokenError"}, failed


def stores(kind: str, tmp_path: Path, redis_url: str | None) -> tuple[TokenStore, str]:
    if kind == "disk":
        return TokenStore.default(tmp_path / "store"), str(tmp_path / "store")
    assert redis_url is not None
    return TokenStore.redis(redis_url), redis_url


@pytest.mark.usefixtures("store_key")
async def test_eight_processes_refresh_once_disk(
    start_realas: StartRealAS,
    realas_login: Callable[[str], str],
    racers: Callable[[str], Racers],
    tmp_path: Path,
) -> None:
    children = racers("disk")
    stack = start_realas(AT_TTL=AT_TTL, AS_LOG_EVENTS="1")
    store, where = stores("disk", tmp_path, None)
    first = await log_in(stack, store, realas_login)
    check_one_refresh(stack, children.race(where, stack.resource), first)


@pytest.mark.usefixtures("store_key")
async def test_without_the_lock_the_race_revokes_the_grant_disk(
    start_realas: StartRealAS,
    realas_login: Callable[[str], str],
    racers: Callable[[str], Racers],
    tmp_path: Path,
) -> None:
    """The control: the same race with a no-op lock fails, so the test above has teeth."""
    children = racers("disk")
    stack = start_realas(AT_TTL=AT_TTL, AS_LOG_EVENTS="1")
    store, where = stores("disk", tmp_path, None)
    await log_in(stack, store, realas_login)
    check_the_race_is_lost(stack, children.race(where, stack.resource, lock="none"))


@pytest.mark.usefixtures("store_key")
async def test_eight_processes_refresh_once_redis(
    start_realas: StartRealAS,
    realas_login: Callable[[str], str],
    racers: Callable[[str], Racers],
    tmp_path: Path,
    redis_url: str,
) -> None:
    children = racers("redis")
    stack = start_realas(AT_TTL=AT_TTL, AS_LOG_EVENTS="1")
    store, where = stores("redis", tmp_path, redis_url)
    first = await log_in(stack, store, realas_login)
    await store.aclose()
    check_one_refresh(stack, children.race(where, stack.resource), first)


@pytest.mark.usefixtures("store_key")
async def test_without_the_lock_the_race_revokes_the_grant_redis(
    start_realas: StartRealAS,
    realas_login: Callable[[str], str],
    racers: Callable[[str], Racers],
    tmp_path: Path,
    redis_url: str,
) -> None:
    children = racers("redis")
    stack = start_realas(AT_TTL=AT_TTL, AS_LOG_EVENTS="1")
    store, where = stores("redis", tmp_path, redis_url)
    await log_in(stack, store, realas_login)
    await store.aclose()
    check_the_race_is_lost(stack, children.race(where, stack.resource, lock="none"))


def check_one_login(stack: RealStack, results: list[dict[str, Any]], logins: Path) -> None:
    errors = [r for r in results if "error" in r or r["status"] != 200]
    assert not errors, errors
    assert len(logins.read_text().splitlines()) == 1  # one process opened "the browser"
    assert len({r["token"] for r in results}) == 1  # the others use its token
    assert grants(stack) == ["authorization_code"]  # one login, no refresh
    assert [e["event"] for e in stack.events()].count("registration") == 1
    token_endpoint = stack.as_metadata()["token_endpoint"]
    [login] = [r for r in results if f"POST {token_endpoint}" in r["sent"]]
    for r in results:  # the others: no discovery, no token request; the store, after the lock
        if r is not login:
            assert set(r["sent"]) == {f"POST {stack.resource}"}, r["sent"]


@pytest.mark.usefixtures("store_key")
async def test_eight_processes_without_tokens_log_in_once_disk(
    start_realas: StartRealAS, racers: Callable[[str], Racers], tmp_path: Path
) -> None:
    """Only one process opens the browser; the others wait for its login (the store's lock)
    and then use the tokens it stored. The store folder does not exist yet."""
    children = racers("disk")
    stack = start_realas(AT_TTL=AT_TTL, AS_LOG_EVENTS="1")
    logins = tmp_path / "logins"
    results = children.race(str(tmp_path / "store"), stack.resource, logins=logins)
    check_one_login(stack, results, logins)


@pytest.mark.usefixtures("store_key")
async def test_without_the_lock_every_process_logs_in_disk(
    start_realas: StartRealAS, racers: Callable[[str], Racers], tmp_path: Path
) -> None:
    """The control: with a no-op lock several processes log in, so the test above has teeth."""
    children = racers("disk")
    stack = start_realas(AT_TTL=AT_TTL, AS_LOG_EVENTS="1")
    logins = tmp_path / "logins"
    results = children.race(str(tmp_path / "store"), stack.resource, lock="none", logins=logins)
    assert len(logins.read_text().splitlines()) == PROCESSES, results  # every one, at the gate
    assert grants(stack).count("authorization_code") > 1


RESTART = textwrap.dedent(
    """
    import json, sys, time
    import httpx
    from mcp_client_auth import OAuthClientProvider, TokenStore

    where, resource, ahead = sys.argv[1:4]
    {RECORDING}
    provider = OAuthClientProvider(
        resource,
        store=TokenStore.default(where),
        interactive=False,
        clock=lambda: time.time() + float(ahead),
        dpop=False,
        transport=recording,
    )
    with httpx.Client(auth=provider, transport=recording) as client:
        response = client.post(resource, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    import threading
    portal = any(t.name == "mcp-client-auth-portal" for t in threading.enumerate())
    loop = "asyncio" in sys.modules
    print(json.dumps({"status": response.status_code, "sent": sent, "portal": portal or loop}))
    """
).replace("{RECORDING}", RECORDING)


@pytest.mark.usefixtures("store_key")
async def test_a_new_process_reuses_the_login_without_discovery(
    start_realas: StartRealAS, realas_login: Callable[[str], str], tmp_path: Path
) -> None:
    stack = start_realas(AT_TTL=AT_TTL, AS_LOG_EVENTS="1")
    where = str(tmp_path / "store")
    await log_in(stack, TokenStore.default(where), realas_login)

    def restart(ahead: float) -> dict[str, Any]:
        out = subprocess.run(
            [sys.executable, "-c", RESTART, where, stack.resource, str(ahead)],
            capture_output=True,
            text=True,
            timeout=60,
            env=os.environ,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        result: dict[str, Any] = json.loads(out.stdout)
        return result

    # a new process: its first request carries the stored token; nothing else is sent, and
    # the default store's read ran at once (no portal thread, no event loop, no asyncio)
    assert restart(0) == {"status": 200, "sent": [f"POST {stack.resource}"], "portal": False}
    assert grants(stack) == ["authorization_code"]  # no login, no refresh
    assert [e["event"] for e in stack.events()].count("registration") == 1  # the login's

    # a new process after expiry: one silent refresh, still no discovery and no login
    token_endpoint = stack.as_metadata()["token_endpoint"]
    assert restart(AHEAD) == {
        "status": 200,
        "sent": [f"POST {token_endpoint}", f"POST {stack.resource}"],
        # the lock, the token request and the write all run in this thread: no portal
        "portal": False,
    }
    assert grants(stack) == ["authorization_code", "refresh_token"]
