"""`callcue dev up`: the whole system on one machine, on embedded defaults."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import grpc
import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc

from callcue.core.postgres import can_connect, start_embedded_postgres

SERVICES = ("notifier", "detector", "transcriber", "gateway")
# The console and telephony speak HTTP (APIs, WebSockets, pages), not gRPC; they come up
# after the gateway they call.
CONSOLE = "console"
TELEPHONY = "telephony"
HTTP_SERVICES = (TELEPHONY, CONSOLE)
PORT_SETTINGS = {
    CONSOLE: "CALLCUE_DEV_CONSOLE_PORT (default 8080)",
    TELEPHONY: "CALLCUE_DEV_TELEPHONY_PORT (default 8090)",
}
# Telephony's gRPC API (ConnectorService) listens beside its WebSocket port.
TELEPHONY_GRPC = "telephony-grpc"
# The key telephony seals connector secrets with, kept beside the other local state.
SECRETS_KEY_FILE = "telephony-secrets-key"
# The gateway's key pair, with which it signs its calls to the internal services.
SERVICE_KEYS_DIR = "service-keys"
# Each service's Prometheus /metrics port is its gRPC port plus this.
METRICS_OFFSET = 100


@dataclass(frozen=True)
class ServiceProcess:
    name: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]


@dataclass(frozen=True)
class DevStack:
    ports: dict[str, int]
    database_url: str
    telephony_secrets_key: str = ""
    # The gateway's key pair for service credentials (gateway.key, gateway.pub).
    service_keys: Path | None = None

    def address(self, service: str) -> str:
        return f"localhost:{self.ports[service]}"


def ports_from(base: int, console: int = 8080, telephony: int = 8090) -> dict[str, int]:
    return {
        "gateway": base,
        "transcriber": base + 1,
        "detector": base + 2,
        "notifier": base + 3,
        TELEPHONY_GRPC: base + 4,
        CONSOLE: console,
        TELEPHONY: telephony,
    }


def _kept(path: Path, make: Callable[[], bytes]) -> bytes:
    """What ``path`` holds, made first if it does not exist; readable by this user only."""
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.touch(mode=0o600)
        path.write_bytes(make())
    return path.read_bytes()


def telephony_secrets_key(state_dir: Path) -> str:
    """The local stack's key for sealing connector secrets: made once, kept (mode 600)."""
    from callcue.telephony.sealing import new_key

    return _kept(state_dir / SECRETS_KEY_FILE, lambda: new_key().encode() + b"\n").decode().strip()


def service_keys(state_dir: Path) -> Path:
    """The local stack's gateway key pair for service credentials, made once and kept
    (the private half mode 600); the internal services trust the folder's gateway.pub."""
    from callcue.core.service_tokens import new_key_pair

    folder = state_dir / SERVICE_KEYS_DIR
    private, public = folder / "gateway.key", folder / "gateway.pub"
    if not (private.is_file() and public.is_file()):
        private.unlink(missing_ok=True)
        private_pem, public_pem = new_key_pair()
        _kept(private, lambda: private_pem)
        public.write_bytes(public_pem)
    return folder


def console_built(repo: Path) -> bool:
    return (repo / "clients" / "web" / "dist" / "index.html").is_file()


def _port_free(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("::", port))
        except OSError:
            return False
    return True


async def ensure_database(state_dir: Path, say: Any) -> tuple[str, Any]:
    """DATABASE_URL if set, else an embedded PostgreSQL kept in state_dir."""
    url = os.environ.get("DATABASE_URL")
    if url:
        if not await can_connect(url):
            host = psycopg.conninfo.conninfo_to_dict(url).get("host")
            raise SystemExit(f"callcue: cannot connect to the PostgreSQL in DATABASE_URL ({host})")
        say("using the PostgreSQL in DATABASE_URL")
        return url, None
    started = time.monotonic()
    admin_url, server = start_embedded_postgres(state_dir / "postgres")
    async with await psycopg.AsyncConnection.connect(admin_url, autocommit=True) as conn:
        exists = await (
            await conn.execute("SELECT 1 FROM pg_database WHERE datname = 'callcue'")
        ).fetchone()
        if not exists:
            await conn.execute("CREATE DATABASE callcue")
    parts = psycopg.conninfo.conninfo_to_dict(admin_url)
    parts["dbname"] = "callcue"
    elapsed = time.monotonic() - started
    say(f"embedded PostgreSQL ready in {elapsed:.1f} s (data in {state_dir / 'postgres'})")
    return psycopg.conninfo.make_conninfo("", **parts), server


def start_services(
    stack: DevStack,
    log_dir: Path,
    services: tuple[str, ...] = SERVICES,
    *,
    environment: Mapping[str, str] | None = None,
    command_prefix: Sequence[str] = (),
) -> list[ServiceProcess]:
    """Each service as a process of its own; ``environment`` adds to (or overrides) what
    they are given, ``command_prefix`` comes before the command (``taskset -c 0``, say)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    processes = []
    for service in services:
        if not _port_free(stack.ports[service]):
            raise SystemExit(
                f"callcue: port {stack.ports[service]} for the {service} is taken; "
                "stop what uses it or set "
                + PORT_SETTINGS.get(service, "CALLCUE_DEV_PORT_BASE (default 50051)")
            )
        env = {
            **os.environ,
            # A development stack is for this machine only, unless asked otherwise.
            "CALLCUE_HOST": os.environ.get("CALLCUE_HOST", "localhost"),
            "CALLCUE_PORT": str(stack.ports[service]),
            "CALLCUE_METRICS_PORT": str(stack.ports[service] + METRICS_OFFSET),
            "DATABASE_URL": stack.database_url,
            "CALLCUE_TRANSCRIBER_ADDRESS": stack.address("transcriber"),
            "CALLCUE_DETECTOR_ADDRESS": stack.address("detector"),
            "CALLCUE_NOTIFIER_ADDRESS": stack.address("notifier"),
            "CALLCUE_GATEWAY_ADDRESS": stack.address("gateway"),
            # http://localhost: a Secure cookie would not come back over plain HTTP.
            "CALLCUE_CONSOLE_SECURE_COOKIES": "false",
            "CALLCUE_TELEPHONY_SECRETS_KEY": stack.telephony_secrets_key,
            "CALLCUE_TELEPHONY_GRPC_PORT": str(stack.ports[TELEPHONY_GRPC]),
            "CALLCUE_TELEPHONY_ADDRESS": stack.address(TELEPHONY_GRPC),
            "CALLCUE_TELEPHONY_PUBLIC_URL": f"ws://localhost:{stack.ports[TELEPHONY]}",
        }
        if stack.service_keys is not None:
            env["CALLCUE_SERVICE_KEY_FILE"] = str(stack.service_keys / "gateway.key")
            env["CALLCUE_TRUSTED_SERVICES_DIR"] = str(stack.service_keys)
        env.update(environment or {})
        if service == "transcriber":
            # It checks the gateway's credentials, not keys: it has no use for the database.
            env.pop("DATABASE_URL", None)
        log = (log_dir / f"{service}.log").open("ab")
        process = subprocess.Popen(
            [*command_prefix, sys.executable, "-m", f"callcue.{service}"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Ctrl-C reaches only this process, which then stops the services in order.
            start_new_session=True,
        )
        processes.append(ServiceProcess(service, process, log))
    return processes


async def wait_until_serving(
    stack: DevStack,
    processes: list[ServiceProcess],
    limit_seconds: float = 120,
) -> dict[str, float]:
    """Seconds until each service said it is ready: gRPC health SERVING, or /readyz
    answering 200 (the HTTP services)."""
    started = time.monotonic()
    ready: dict[str, float] = {}
    for running in processes:
        service, process = running.name, running.process
        async with grpc.aio.insecure_channel(stack.address(service)) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while not await _serving(service, stack.ports[service], health):
                if process.poll() is not None:
                    raise SystemExit(
                        f"callcue: the {service} exited with code {process.returncode}; see its log"
                    )
                if time.monotonic() - started > limit_seconds:
                    raise SystemExit(
                        f"callcue: the {service} did not become ready in {limit_seconds:.0f} s"
                    )
                await asyncio.sleep(0.2)
            ready[service] = time.monotonic() - started
    return ready


async def _serving(service: str, port: int, health: health_pb2_grpc.HealthStub) -> bool:
    if service in HTTP_SERVICES:
        return await asyncio.to_thread(_answers, f"http://localhost:{port}/readyz")
    try:
        reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
    except grpc.aio.AioRpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def stop_services(processes: list[ServiceProcess]) -> None:
    # The gateway first, so no call is mid-way when its dependencies go.
    for running in reversed(processes):
        if running.process.poll() is None:
            running.process.send_signal(signal.SIGTERM)
            try:
                running.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                running.process.kill()
        running.log.close()
