"""What the doors cost: signing and checking a service credential, and the time to open an
RPC behind each kind of door, on loopback.

An RPC is a unary call to a server with the real interceptor (authentication and the access
rules), answered at once: with authentication off, with a tenant's API key (its check
remembered, as on every call after a key's first), and with the gateway's credential.

    uv run python bench/service_credentials.py [--calls 2000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from evaldata import percentile

from callcue.core import api_keys, database, scopes, service_tokens
from callcue.core.api_keys import Tenant
from callcue.core.auth import (
    ApiKeyAuthenticator,
    Authenticator,
    Caller,
    CallerAuthenticator,
    SingleTenant,
)
from callcue.core.channel import open_channel
from callcue.core.credentials import MetadataSource, api_key
from callcue.core.postgres import create_database, drop_database
from callcue.core.server import GrpcServer
from callcue.core.settings import Environment, ServerSettings

SERVICE = "bench.Echo"
RULES = {SERVICE: {"Echo": scopes.CALLS_READ}}


def micros(action: Callable[[], Any], times: int) -> float:
    started = time.perf_counter()
    for _ in range(times):
        action()
    return (time.perf_counter() - started) / times * 1e6


async def rpc_starts(
    authenticator: Authenticator, metadata: MetadataSource | None, calls: int
) -> list[float]:
    settings = ServerSettings.from_env(
        Environment({"CALLCUE_HOST": "127.0.0.1", "CALLCUE_PORT": "0", "CALLCUE_AUTH": "none"}),
        0,
    )
    server = GrpcServer(settings, [SERVICE], authenticator, RULES)

    async def echo(request: bytes, context: Any) -> bytes:
        return request

    same = (lambda b: b, lambda b: b)
    server.server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(echo, *same)}
            )
        ]
    )
    port = await server.start()
    seconds = []
    async with open_channel(f"127.0.0.1:{port}", credentials=metadata) as channel:
        call: Callable[..., Awaitable[bytes]] = channel.unary_unary(f"/{SERVICE}/Echo")
        for _ in range(50):
            await call(b"x")
        for _ in range(calls):
            started = time.perf_counter()
            await call(b"x")
            seconds.append(time.perf_counter() - started)
    await server.stop(0)
    return seconds


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    private, public = service_tokens.new_key_pair()
    signer = service_tokens.ServiceSigner("gateway", service_tokens.private_key(private, "b"))
    verifier = service_tokens.ServiceVerifier(
        "detector", {"gateway": service_tokens.public_key(public, "b")}
    )
    caller = Caller(Tenant("bench"), "0123456789ab", frozenset({scopes.ADMIN}))
    token = signer.token(caller, "detector")
    print(f"credential: {len(token)} bytes")
    print(f"sign   {micros(lambda: signer.token(caller, 'detector'), 5000):6.1f} µs")
    print(f"verify {micros(lambda: verifier.caller(token), 5000):6.1f} µs")

    name = f"callcue_doors_{uuid.uuid4().hex[:8]}"
    url = await create_database(args.postgres, name)
    try:
        await database.migrate(url, api_keys.COMPONENT, api_keys.MIGRATIONS)
        pool = await database.open_pool(url, max_size=2)
        store = api_keys.ApiKeyStore(pool)
        _, key = await store.create_key("bench", "bench", [scopes.CALLS_READ])
        keys = ApiKeyAuthenticator(store)
        doors = CallerAuthenticator(keys, verifier, service_tokens.SERVICE_CREDENTIAL)
        cases: list[tuple[str, Authenticator, MetadataSource | None]] = [
            ("authentication off", SingleTenant("bench"), None),
            ("API key (remembered)", doors, api_key(key)),
            (
                "gateway credential",
                doors,
                lambda: signer.metadata(caller, "detector"),
            ),
        ]
        print(f"\nRPC round trip on loopback, {args.calls} calls each (ms):")
        for label, authenticator, metadata in cases:
            seconds = await rpc_starts(authenticator, metadata, args.calls)
            print(
                f"  {label:<22} p50 {statistics.median(seconds) * 1000:.3f}  "
                f"p95 {percentile(seconds, 0.95) * 1000:.3f}"
            )
        await pool.close()
    finally:
        await drop_database(args.postgres, name)


if __name__ == "__main__":
    asyncio.run(main())
