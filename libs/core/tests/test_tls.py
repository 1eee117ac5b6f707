"""TLS for external clients: a server certificate, and optionally client certificates
(mutual TLS). Certificates are made here with openssl, for this test only."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from callcue.core import auth, scopes
from callcue.core.auth import ApiKeyAuthenticator
from callcue.core.channel import open_channel
from callcue.core.credentials import api_key
from callcue.core.server import GrpcServer
from callcue.core.settings import Environment, ServerSettings, SettingsError

if TYPE_CHECKING:
    from callcue.core.testing import TenantKeys

SERVICE = "test.Tls"


def openssl(folder: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tls")
    openssl(folder, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
            "-out", "ca.pem", "-days", "2", "-subj", "/CN=callcue test CA")  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name in ("server", "client"):
        openssl(folder, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
                "-out", f"{name}.csr", "-subj", f"/CN={name}")  # fmt: skip
        openssl(folder, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem",
                "-CAkey", "ca.key", "-CAcreateserial", "-out", f"{name}.pem", "-days", "2",
                "-extfile", "san.ext")  # fmt: skip
    return folder


async def whoami(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return auth.tenant_id().encode()


async def serve(
    folder: Path, authenticator: ApiKeyAuthenticator, *, mutual: bool
) -> AsyncIterator[int]:
    environ = {
        "CALLCUE_HOST": "127.0.0.1",
        "CALLCUE_PORT": "0",
        "CALLCUE_AUTH": "none",
        "CALLCUE_TLS_CERT_FILE": str(folder / "server.pem"),
        "CALLCUE_TLS_KEY_FILE": str(folder / "server.key"),
    }
    if mutual:
        environ["CALLCUE_TLS_CLIENT_CA_FILE"] = str(folder / "ca.pem")
    server = GrpcServer(
        ServerSettings.from_env(Environment(environ), 0),
        [SERVICE],
        authenticator,
        {SERVICE: {"Whoami": scopes.CALLS_READ}},
    )
    identity = (lambda b: b, lambda b: b)
    handler = grpc.unary_unary_rpc_method_handler(whoami, *identity)
    server.server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler(SERVICE, {"Whoami": handler})]
    )
    yield await server.start()
    await server.stop(0)


async def ask(port: int, key: str, tls: grpc.ChannelCredentials | None) -> bytes:
    async with open_channel(f"127.0.0.1:{port}", credentials=api_key(key), tls=tls) as channel:
        answer: bytes = await channel.unary_unary(f"/{SERVICE}/Whoami")(b"", timeout=5)
        return answer


async def test_server_tls_encrypts_and_plaintext_clients_are_refused(
    certificates: Path, authenticator: ApiKeyAuthenticator, tenant_keys: TenantKeys
) -> None:
    ca = (certificates / "ca.pem").read_bytes()
    async for port in serve(certificates, authenticator, mutual=False):
        trusted = grpc.ssl_channel_credentials(root_certificates=ca)
        assert await ask(port, tenant_keys.acme, trusted) == b"acme"
        with pytest.raises(grpc.aio.AioRpcError) as plaintext:
            await ask(port, tenant_keys.acme, None)
        assert plaintext.value.code() == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(grpc.aio.AioRpcError) as untrusted:
            await ask(port, tenant_keys.acme, grpc.ssl_channel_credentials())
        assert untrusted.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_needs_a_client_certificate_from_the_ca(
    certificates: Path, authenticator: ApiKeyAuthenticator, tenant_keys: TenantKeys
) -> None:
    ca = (certificates / "ca.pem").read_bytes()
    async for port in serve(certificates, authenticator, mutual=True):
        without = grpc.ssl_channel_credentials(root_certificates=ca)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await ask(port, tenant_keys.acme, without)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        with_certificate = grpc.ssl_channel_credentials(
            root_certificates=ca,
            private_key=(certificates / "client.key").read_bytes(),
            certificate_chain=(certificates / "client.pem").read_bytes(),
        )
        assert await ask(port, tenant_keys.globex, with_certificate) == b"globex"


def test_tls_settings_are_checked_at_start(certificates: Path) -> None:
    base = {"CALLCUE_AUTH": "none"}
    with pytest.raises(SettingsError, match="go together"):
        ServerSettings.from_env(
            Environment({**base, "CALLCUE_TLS_CERT_FILE": str(certificates / "server.pem")}), 0
        )
    with pytest.raises(SettingsError, match=r"CALLCUE_TLS_KEY_FILE: cannot read /nowhere\.key"):
        ServerSettings.from_env(
            Environment(
                {
                    **base,
                    "CALLCUE_TLS_CERT_FILE": str(certificates / "server.pem"),
                    "CALLCUE_TLS_KEY_FILE": "/nowhere.key",
                }
            ),
            0,
        )
    settings = ServerSettings.from_env(
        Environment(
            {
                **base,
                "CALLCUE_TLS_CERT_FILE": str(certificates / "server.pem"),
                "CALLCUE_TLS_KEY_FILE": str(certificates / "server.key"),
            }
        ),
        0,
    )
    assert settings.tls is not None and "PRIVATE KEY" not in repr(settings)
