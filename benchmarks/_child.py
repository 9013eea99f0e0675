"""The processes that benchmarks/run.py starts and times as a whole (not run by hand).

    python benchmarks/_child.py MODE ARGS...

Each mode imports only what its kind of user process would import, so a whole-process time
or a peak RSS measures that process and nothing of the runner. Results go to stdout as one
JSON line; a mode that waits for a start signal prints ``ready`` first and reads one line
from stdin (the runner starts 8 of them together that way).
"""

from __future__ import annotations

import sys
import time

T0 = time.perf_counter()


def _package_path() -> list[str]:
    """Where ``mcp_client_auth`` would be imported from (found, not imported)."""
    import importlib.util

    spec = importlib.util.find_spec("mcp_client_auth")
    assert spec is not None and spec.submodule_search_locations is not None
    return list(spec.submodule_search_locations)


def _out(**fields: object) -> None:
    import json

    print(json.dumps(fields), flush=True)


def _wait_for_go() -> None:
    print("ready", flush=True)
    sys.stdin.readline()


def _peak_rss_kib() -> int:
    """This process's peak resident set (VmHWM), in KiB.

    Not ``getrusage``'s ``ru_maxrss``: Linux carries that over an exec from the forked copy of
    the parent, so a child started by a large runner would report the runner's size.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# -- stores ------------------------------------------------------------------------------------


def record(
    resource: str, token_endpoint: str, access_token: str, expires_at: float, i: int = 0
) -> object:
    """A realistic stored record: tokens, a registration, both metadata documents."""
    from mcp_client_auth.tokens import ClientRegistration, ServerRecord, TokenSet

    base = token_endpoint.rsplit("/", 1)[0]
    return ServerRecord(
        resource=resource,
        issuer=base,
        resource_metadata={
            "resource": resource,
            "authorization_servers": [base],
            "scopes_supported": ["read", "write"],
            "bearer_methods_supported": ["header"],
        },
        server_metadata={
            "issuer": base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": token_endpoint,
            "registration_endpoint": f"{base}/register",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
        },
        client=ClientRegistration(
            f"client-{i}", redirect_uris=("http://127.0.0.1:33418/callback",), issuer=base
        ),
        tokens=TokenSet(
            access_token, expires_at=expires_at, refresh_token=f"refresh-{i}", scope="read write"
        ),
    )


def setup_store(directory: str, resource: str, token_endpoint: str, token: str, ttl: str) -> None:
    """One record in ``TokenStore.default(directory)``: valid for ``ttl`` s (negative: expired)."""
    import asyncio

    from mcp_client_auth import TokenStore
    from mcp_client_auth.metadata import canonical_resource_url

    store = TokenStore.default(directory)
    rec = record(canonical_resource_url(resource), token_endpoint, token, time.time() + float(ttl))
    asyncio.run(store.put(rec))  # type: ignore[arg-type]
    _out(protection=str(store.protection.kind))


def fill_store(directory: str, count: str, keys_file: str, filetree: str = "yes") -> None:
    """``count`` records in the default store and in FileTreeStore + FernetEncryptionWrapper.

    The filling itself is not measured, so both skip the folder fsync of a durable put.
    """
    import asyncio
    import json
    import os
    import warnings
    from pathlib import Path

    from mcp_client_auth.store.default import open_default
    from mcp_client_auth.store.disk import EncryptedFileStore
    from mcp_client_auth.store.token_store import COLLECTION

    _kv, _locks, key = open_default(directory)
    lazy = EncryptedFileStore(Path(directory), key.keys, durable=False)
    records = [
        record(
            f"https://server-{i}.example.com/mcp",
            f"https://server-{i}.example.com/auth/token",
            "a" * 600,
            time.time() + 3600,
            i,
        )
        for i in range(int(count))
    ]
    values = [r.to_dict() for r in records]  # type: ignore[attr-defined]
    keys = [r.resource for r in records]  # type: ignore[attr-defined]
    # the first entry through the store itself, which keeps its key on its first write
    asyncio.run(_kv.put(keys[0], values[0], collection=COLLECTION))
    asyncio.run(lazy.put_many(keys, values, collection=COLLECTION))

    if filetree == "yes":  # FileTree writes take ~5 ms each: --quick leaves it out
        warnings.simplefilter("ignore")
        theirs = _filetree(Path(directory).parent / "filetree", os.environ["BENCH_FERNET_KEY"])
        asyncio.run(theirs.put_many(keys, values, collection=COLLECTION))
    Path(keys_file).write_text(json.dumps(keys))
    _out(count=len(keys), protection=str(key.protection.kind))


def _filetree(folder: object, fernet_key: str) -> object:
    from cryptography.fernet import Fernet, MultiFernet
    from key_value.aio.stores.filetree import (
        FileTreeStore,
        FileTreeV1CollectionSanitizationStrategy,
        FileTreeV1KeySanitizationStrategy,
    )
    from key_value.aio.wrappers.encryption import FernetEncryptionWrapper

    folder.mkdir(parents=True, exist_ok=True)  # type: ignore[attr-defined]
    return FernetEncryptionWrapper(
        FileTreeStore(
            data_directory=folder,
            key_sanitization_strategy=FileTreeV1KeySanitizationStrategy(folder),
            collection_sanitization_strategy=FileTreeV1CollectionSanitizationStrategy(folder),
        ),
        fernet=MultiFernet([Fernet(fernet_key.encode())]),
    )


# -- (2) reconnect ------------------------------------------------------------------------------


def reconnect_ours(url: str, directory: str) -> None:
    """A new process with a stored valid token: the first authorized response."""
    import httpx

    from mcp_client_auth import OAuthClientProvider, TokenStore

    t_import = time.perf_counter()
    store = TokenStore.default(directory)
    t_store = time.perf_counter()
    auth = OAuthClientProvider(url, store=store, interactive=False)
    with httpx.Client(auth=auth) as client:
        status = client.get(url).status_code
    t_done = time.perf_counter()
    _out(
        status=status,
        imports=t_import - T0,
        store=t_store - t_import,
        request=t_done - t_store,
    )


def setup_store_redis(redis_url: str, resource: str, token_endpoint: str, token: str) -> None:
    """One valid record in ``TokenStore.redis(redis_url)`` (the key from the environment)."""
    import asyncio

    from mcp_client_auth import TokenStore
    from mcp_client_auth.metadata import canonical_resource_url

    async def put() -> None:
        store = TokenStore.redis(redis_url)
        rec = record(canonical_resource_url(resource), token_endpoint, token, time.time() + 3600)
        await store.put(rec)  # type: ignore[arg-type]
        await store.aclose()

    asyncio.run(put())
    _out(stored=True)


def reconnect_redis(url: str, redis_url: str) -> None:
    """:func:`reconnect_ours` with the store in Redis: the first authorized response."""
    import httpx

    from mcp_client_auth import OAuthClientProvider, TokenStore

    store = TokenStore.redis(redis_url)
    auth = OAuthClientProvider(url, store=store, interactive=False)
    with httpx.Client(auth=auth) as client:
        status = client.get(url).status_code
    _out(status=status)


def reconnect_static(url: str, token: str) -> None:
    """The floor: the same request with the token given as a static header."""
    import httpx

    t_import = time.perf_counter()
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as client:
        status = client.get(url).status_code
    _out(status=status, imports=t_import - T0, request=time.perf_counter() - t_import)


# -- (3) the token command's stand-in -------------------------------------------------------------


def token_library(url: str, directory: str) -> None:
    """What ``mcp-client-auth token URL`` does, through the public interface."""
    from mcp_client_auth import OAuthClientProvider, TokenStore

    auth = OAuthClientProvider(url, store=TokenStore.default(directory), interactive=False)
    print(auth.get_token().access_token)


def cli_lazy_init(*argv: str) -> None:
    """What-if: the CLI with ``mcp_client_auth/__init__.py`` not run (as a lazy one would be).

    The package is put in ``sys.modules`` as an empty namespace, so ``mcp_client_auth.cli``
    imports only what its own code asks for, the way it would under a PEP 562 ``__getattr__``.
    """
    import types

    package = types.ModuleType("mcp_client_auth")
    package.__path__ = _package_path()
    sys.modules["mcp_client_auth"] = package
    from mcp_client_auth.cli import main

    sys.exit(main(list(argv)))


# -- (4) 8 processes on an expired token ------------------------------------------------------


def concurrent_ours(url: str, directory: str) -> None:
    import httpx

    from mcp_client_auth import OAuthClientProvider, TokenStore

    store = TokenStore.default(directory)
    # instrumentation, not behaviour: when this process asked for, got and gave back the
    # cross-process lock (the store's own lock object, its methods wrapped)
    marks: dict[str, float] = {}
    factory = store._lock_factory

    def timed_lock(resource: str):  # type: ignore[no-untyped-def]
        lock = factory(resource)
        try_acquire, release = lock.try_acquire, lock.release

        def timed_try() -> bool:
            marks.setdefault("asked", time.time())
            got = try_acquire()
            if got:
                marks.setdefault("got", time.time())
            return got

        def timed_release() -> None:
            if lock.locked:
                marks.setdefault("gave", time.time())
            release()

        lock.try_acquire, lock.release = timed_try, timed_release
        return lock

    store._lock_factory = timed_lock
    auth = OAuthClientProvider(url, store=store, interactive=False)
    with httpx.Client(auth=auth, timeout=60.0) as client:
        _wait_for_go()
        try:
            status = client.get(url).status_code
        except Exception as exc:
            _out(status=None, error=f"{type(exc).__name__}: {exc}", done=time.time(), **marks)
            return
        marks["answered"] = time.time()
    _out(status=status, done=time.time(), **marks)


def concurrent_static(url: str, token: str) -> None:
    import httpx

    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60.0) as client:
        _wait_for_go()
        status = client.get(url).status_code
    _out(status=status, done=time.time())


# -- (6) status over 1,000 entries ------------------------------------------------------------


def status_library(directory: str) -> None:
    """A ``status`` through the public interface: every server, its issuer, scopes, expiry."""
    import asyncio

    from mcp_client_auth import TokenStore

    async def run() -> list[str]:
        store = TokenStore.default(directory)
        return [
            f"{rec.resource} {rec.issuer} {rec.tokens.scope} {rec.tokens.expires_at}"
            for rec in await store.records()
            if rec.tokens is not None
        ]

    lines = asyncio.run(run())
    sys.stdout.write("\n".join(lines) + "\n")


def status_filetree(folder: str, keys_file: str) -> None:
    """The same over FileTreeStore + FernetEncryptionWrapper (it cannot list: reads every key)."""
    import asyncio
    import json
    import os
    import warnings
    from pathlib import Path

    warnings.simplefilter("ignore")
    store = _filetree(Path(folder), os.environ["BENCH_FERNET_KEY"])
    keys = json.loads(Path(keys_file).read_text())

    async def run() -> list[str]:
        values = await store.get_many(keys, collection="mcp-client-auth")  # type: ignore[attr-defined]
        return [
            f"{v['resource']} {v['issuer']} {v['tokens']['scope']} {v['tokens']['expires_at']}"
            for v in values
            if v is not None
        ]

    lines = asyncio.run(run())
    sys.stdout.write("\n".join(lines) + "\n")


def keyring_parts(directory: str) -> None:
    """Where reading the store's key from the Secret Service goes, step by step, in one thread.

    The store reads it in a timeout thread, which cProfile does not see; these are the calls
    it makes there (``store/secret_service.py``: ``secretstorage`` without ``keyring``), timed
    one by one.
    """
    import itertools

    marks = [("start", time.perf_counter())]

    def mark(name: str) -> None:
        marks.append((name, time.perf_counter()))

    import secretstorage

    mark("import secretstorage")
    connection = secretstorage.dbus_init()
    secretstorage.check_service_availability(connection)
    mark("D-Bus connection + service check")
    collection = secretstorage.get_default_collection(connection)
    locked = collection.is_locked()
    mark("default collection")
    items = list(collection.search_items({"service": "mcp-client-auth", "username": directory}))
    mark("search")
    secret = items[0].get_secret() if items else None
    mark("get_secret (opens an encrypted session)")
    connection.close()
    _out(
        found=secret is not None and not locked,
        seconds=time.perf_counter() - T0,
        parts={b[0]: b[1] - a[1] for a, b in itertools.pairwise(marks)},
    )


def keyring_backend(directory: str) -> None:
    """The same key read through ``keyring``'s SecretService backend (the store's way before
    it spoke to ``secretstorage`` directly): ``import keyring`` is what it costs more."""
    from keyring.backends import SecretService

    SecretService.Keyring.priority  # noqa: B018  (its viability check, as keyring makes it)
    secret = SecretService.Keyring().get_password("mcp-client-auth", directory)
    _out(found=secret is not None, seconds=time.perf_counter() - T0)


def lookup(directory: str, keys_file: str, rounds: str, filetree: str = "yes") -> None:
    """One lookup among 1,000: ours (``TokenStore.get``) and FileTree + Fernet, interleaved."""
    import asyncio
    import json
    import os
    import statistics
    import warnings
    from pathlib import Path

    from mcp_client_auth import TokenStore
    from mcp_client_auth.store.token_store import COLLECTION

    warnings.simplefilter("ignore")
    keys = json.loads(Path(keys_file).read_text())
    theirs = (
        _filetree(Path(directory).parent / "filetree", os.environ["BENCH_FERNET_KEY"])
        if filetree == "yes"
        else None
    )

    async def run() -> tuple[float, float | None]:
        store = TokenStore.default(directory)
        ours_t, theirs_t = [], []
        for r in range(int(rounds)):
            key = keys[(r * 37) % len(keys)]
            start = time.process_time()
            rec = await store.get(key)
            ours_t.append(time.process_time() - start)
            assert rec is not None and rec.resource == key
            if theirs is not None:
                start = time.process_time()
                value = await theirs.get(key, collection=COLLECTION)  # type: ignore[attr-defined]
                theirs_t.append(time.process_time() - start)
                assert value is not None
        return statistics.median(ours_t), statistics.median(theirs_t) if theirs_t else None

    ours, filetree = asyncio.run(run())
    _out(ours=ours, filetree=filetree)


# -- (7) memory ---------------------------------------------------------------------------------


def _mock_ok(request: object) -> object:
    import httpx

    return httpx.Response(200, content=b"{}")


def memory_floor(url: str, token: str) -> None:
    import httpx

    transport = httpx.MockTransport(_mock_ok)
    with httpx.Client(transport=transport, headers={"Authorization": f"Bearer {token}"}) as c:
        status = c.get(url).status_code
    _out(status=status, rss_kib=_peak_rss_kib(), modules=len(sys.modules))


def memory_floor_plus(url: str, token: str, *modules: str) -> None:
    """The floor with ``modules`` imported too: which import the provider's memory goes to."""
    import importlib

    for name in modules:
        importlib.import_module(name)
    memory_floor(url, token)


def memory_ours(url: str, directory: str) -> None:
    import httpx

    from mcp_client_auth import OAuthClientProvider, TokenStore

    auth = OAuthClientProvider(url, store=TokenStore.default(directory), interactive=False)
    transport = httpx.MockTransport(_mock_ok)
    with httpx.Client(transport=transport, auth=auth) as c:
        status = c.get(url).status_code
    _out(status=status, rss_kib=_peak_rss_kib(), modules=len(sys.modules))


def memory_sdk(url: str, token: str) -> None:
    import asyncio

    import httpx2
    from mcp.client.auth import OAuthClientProvider
    from mcp.shared.auth import OAuthClientMetadata, OAuthToken

    class Storage:
        async def get_tokens(self) -> OAuthToken:
            return OAuthToken(access_token=token, token_type="Bearer", expires_in=3600)

        async def set_tokens(self, tokens: object) -> None: ...

        async def get_client_info(self) -> None:
            return None

        async def set_client_info(self, info: object) -> None: ...

    auth = OAuthClientProvider(
        url,
        OAuthClientMetadata(redirect_uris=["http://127.0.0.1:33418/callback"]),  # type: ignore[list-item]
        Storage(),
    )

    async def run() -> int:
        transport = httpx2.MockTransport(lambda r: httpx2.Response(200, content=b"{}"))
        async with httpx2.AsyncClient(transport=transport, auth=auth) as c:
            return (await c.get(url)).status_code

    status = asyncio.run(run())
    _out(status=status, rss_kib=_peak_rss_kib(), modules=len(sys.modules))


def memory_python() -> None:
    _out(status=200, rss_kib=_peak_rss_kib(), modules=len(sys.modules))


MODES = {
    "setup-store": setup_store,
    "fill-store": fill_store,
    "reconnect-ours": reconnect_ours,
    "reconnect-static": reconnect_static,
    "setup-store-redis": setup_store_redis,
    "reconnect-redis": reconnect_redis,
    "token-library": token_library,
    "cli-lazy-init": cli_lazy_init,
    "concurrent-ours": concurrent_ours,
    "concurrent-static": concurrent_static,
    "status-library": status_library,
    "status-filetree": status_filetree,
    "lookup": lookup,
    "keyring-parts": keyring_parts,
    "keyring-backend": keyring_backend,
    "memory-floor": memory_floor,
    "memory-ours": memory_ours,
    "memory-floor-plus": memory_floor_plus,
    "memory-sdk": memory_sdk,
    "memory-python": memory_python,
}

if __name__ == "__main__":
    MODES[sys.argv[1]](*sys.argv[2:])
