"""Service credentials: signed by one service for another, checked without a database,
refused when forged, misaddressed, stale or from a service not trusted."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import grpc
import pytest

from callcue.core import service_tokens
from callcue.core.api_keys import Tenant
from callcue.core.auth import Caller, CallerAuthenticator
from callcue.core.errors import RpcError
from callcue.core.service_tokens import ServiceSigner, ServiceVerifier, private_key, public_key
from callcue.core.settings import AuthSettings, Doors, Environment, SettingsError

CALLER = Caller(Tenant("acme", 5), "0123456789ab", frozenset({"calls:stream", "subscribe"}))


def pair() -> tuple[ServiceSigner, ServiceVerifier, list[float]]:
    now = [1_000_000.0]
    private, public = service_tokens.new_key_pair()
    signer = ServiceSigner("gateway", private_key(private, "test"), clock=lambda: now[0])
    verifier = ServiceVerifier(
        "notifier", {"gateway": public_key(public, "test")}, clock=lambda: now[0]
    )
    return signer, verifier, now


def refusal(verifier: ServiceVerifier, token: str) -> str:
    with pytest.raises(RpcError) as refused:
        verifier.caller(token)
    assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED
    return refused.value.message


def test_a_credential_names_the_caller_it_was_signed_for() -> None:
    signer, verifier, _ = pair()
    caller = verifier.caller(signer.token(CALLER, "notifier"))
    assert caller == Caller(CALLER.tenant, CALLER.key_id, CALLER.scopes, service="gateway")


def test_forged_misaddressed_and_stale_credentials_are_refused() -> None:
    signer, verifier, now = pair()
    token = signer.token(CALLER, "notifier")
    head, claims, signature = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(claims + "=="))
    forged["tenant"] = "globex"
    forged_claims = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    assert "signature is not gateway's" in refusal(verifier, f"{head}.{forged_claims}.{signature}")
    assert "addressed to 'detector'" in refusal(verifier, signer.token(CALLER, "detector"))
    other, _, _ = pair()
    assert "signature is not gateway's" in refusal(verifier, other.token(CALLER, "notifier"))
    intruder = ServiceSigner("intruder", private_key(service_tokens.new_key_pair()[0], "t"))
    assert "'intruder', which this service does not trust" in refusal(
        verifier, intruder.token(CALLER, "notifier")
    )
    assert "not a v1 credential" in refusal(verifier, "cc_0123456789ab_" + "x" * 43)
    assert "well-formed" in refusal(verifier, "v1.!!!.???")
    now[0] += service_tokens.LIFETIME_SECONDS + service_tokens.LEEWAY_SECONDS + 1
    assert "expired" in refusal(verifier, token)


async def test_an_internal_only_door_refuses_keys_and_asks_for_a_credential() -> None:
    signer, verifier, _ = pair()
    door = CallerAuthenticator(None, verifier, service_tokens.SERVICE_CREDENTIAL)
    with pytest.raises(RpcError) as refused:
        await door.authenticate([("authorization", "Bearer cc_0123456789ab_" + "x" * 43)])
    assert refused.value.code == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(RpcError) as missing:
        await door.authenticate([])
    assert missing.value.code == grpc.StatusCode.UNAUTHENTICATED
    token = signer.token(CALLER, "notifier")
    caller = await door.authenticate([(service_tokens.SERVICE_CREDENTIAL, token)])
    assert caller.service == "gateway"


async def test_a_public_only_door_takes_no_credentials() -> None:
    signer, _, _ = pair()

    class NoKeys:
        async def authenticate(self, metadata: object) -> Caller:
            raise AssertionError("keys are not what was sent")

    door = CallerAuthenticator(NoKeys(), None, service_tokens.SERVICE_CREDENTIAL)
    with pytest.raises(RpcError) as refused:
        await door.authenticate(
            [(service_tokens.SERVICE_CREDENTIAL, signer.token(CALLER, "gateway"))]
        )
    assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_settings_ask_for_what_the_doors_need(tmp_path: Path) -> None:
    internal = Doors("transcriber", public=False, internal=True)
    with pytest.raises(SettingsError, match="CALLCUE_TRUSTED_SERVICES_DIR is required"):
        AuthSettings.from_env(Environment({}), internal)
    with pytest.raises(SettingsError, match=r"holds no <service>\.pub"):
        AuthSettings.from_env(
            Environment({"CALLCUE_TRUSTED_SERVICES_DIR": str(tmp_path)}), internal
        )
    private, public = service_tokens.new_key_pair()
    (tmp_path / "gateway.pub").write_bytes(public)
    settings = AuthSettings.from_env(
        Environment({"CALLCUE_TRUSTED_SERVICES_DIR": str(tmp_path)}), internal
    )
    # The transcriber needs no database.
    assert settings.database_url is None and settings.trusted_services == {"gateway": public}
    (tmp_path / "bad.pub").write_text("not a key")
    with pytest.raises(SettingsError, match=r"bad\.pub is not a PEM public key"):
        AuthSettings.from_env(
            Environment({"CALLCUE_TRUSTED_SERVICES_DIR": str(tmp_path)}), internal
        )
    signs = Doors("gateway", signs=True)
    with pytest.raises(SettingsError, match="CALLCUE_SERVICE_KEY_FILE is required"):
        AuthSettings.from_env(Environment({"DATABASE_URL": "postgresql://x"}), signs)
    (tmp_path / "gateway.key").write_bytes(private)
    settings = AuthSettings.from_env(
        Environment(
            {
                "DATABASE_URL": "postgresql://x",
                "CALLCUE_SERVICE_KEY_FILE": str(tmp_path / "gateway.key"),
            }
        ),
        signs,
    )
    assert settings.service_key == private and b"PRIVATE" not in repr(settings).encode()
    (tmp_path / "public-as-private.key").write_bytes(public)
    with pytest.raises(SettingsError, match="not an unencrypted PEM private key"):
        AuthSettings.from_env(
            Environment(
                {
                    "DATABASE_URL": "postgresql://x",
                    "CALLCUE_SERVICE_KEY_FILE": str(tmp_path / "public-as-private.key"),
                }
            ),
            signs,
        )
