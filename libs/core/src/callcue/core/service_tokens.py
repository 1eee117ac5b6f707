"""Service credentials: how a callcue service that has authenticated a caller (the
gateway) tells an internal service which tenant it acts for, in a form that service checks
without a database.

A credential reads ``v1.<claims>.<signature>``: the claims are base64url JSON (issuer,
audience, tenant, the caller's key id and scopes, issue and expiry time); the signature is
Ed25519 over ``v1.<claims>`` with the issuing service's private key. An internal service
trusts the public keys in its trusted-services directory, one ``<service>.pub`` per service
it accepts calls from, and only credentials addressed to itself.

A credential is checked once, when an RPC starts, so it can be short-lived: a call stream
outlives it, a copied one soon stops working, and nothing needs revoking.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import grpc
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from callcue.core.api_keys import Tenant
from callcue.core.auth import Caller, current_caller
from callcue.core.errors import RpcError

SERVICE_CREDENTIAL = "x-callcue-service-credential"
_VERSION = "v1"
LIFETIME_SECONDS = 60.0
# Clocks of two pods may disagree a little.
LEEWAY_SECONDS = 30.0
_SERVICE_NAME = re.compile(r"[a-z][a-z0-9-]{0,62}")


class ServiceKeyError(ValueError):
    """A key file that cannot be used, with why."""


def new_key_pair() -> tuple[bytes, bytes]:
    """A new Ed25519 key pair as PEM: (private, public). ``openssl genpkey -algorithm
    ed25519`` makes the same."""
    private = Ed25519PrivateKey.generate()
    return (
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )


def private_key(pem: bytes, where: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise ServiceKeyError(f"{where} is not an unencrypted PEM private key: {error}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ServiceKeyError(f"{where} is not an Ed25519 key (openssl genpkey -algorithm ed25519)")
    return key


def public_key(pem: bytes, where: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as error:
        raise ServiceKeyError(f"{where} is not a PEM public key: {error}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ServiceKeyError(f"{where} is not an Ed25519 public key")
    return key


def read_trusted(directory: Path) -> dict[str, bytes]:
    """The ``<service>.pub`` files of a directory (a mounted ConfigMap, say), by service."""
    try:
        files = sorted(directory.glob("*.pub"))
    except OSError as error:
        raise ServiceKeyError(f"cannot read {directory}: {error.strerror}") from None
    trusted = {}
    for file in files:
        if not _SERVICE_NAME.fullmatch(file.stem):
            raise ServiceKeyError(f"{file}: the file name must be <service name>.pub")
        pem = file.read_bytes()
        public_key(pem, str(file))
        trusted[file.stem] = pem
    if not trusted:
        raise ServiceKeyError(f"{directory} holds no <service>.pub public key")
    return trusted


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ServiceSigner:
    """Signs credentials for the caller this service is serving."""

    def __init__(
        self,
        service: str,
        key: Ed25519PrivateKey,
        *,
        lifetime_seconds: float = LIFETIME_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        self._key = key
        self._lifetime = lifetime_seconds
        self._clock = clock

    def token(self, caller: Caller, audience: str) -> str:
        now = self._clock()
        claims = {
            "iss": self.service,
            "aud": audience,
            "tenant": caller.tenant_id,
            "calls": caller.tenant.max_concurrent_calls,
            "key": caller.key_id,
            "scopes": sorted(caller.scopes),
            "iat": int(now),
            "exp": int(now + self._lifetime),
        }
        body = f"{_VERSION}.{_b64(json.dumps(claims, separators=(',', ':')).encode())}"
        return f"{body}.{_b64(self._key.sign(body.encode()))}"

    def metadata(self, caller: Caller, audience: str) -> Sequence[tuple[str, str]]:
        return ((SERVICE_CREDENTIAL, self.token(caller, audience)),)

    def credentials(self, audience: str) -> Callable[[], Sequence[tuple[str, str]]]:
        """Metadata for each call to ``audience``: a credential for the caller being served."""
        return lambda: self.metadata(current_caller(), audience)


def _refused(why: str) -> RpcError:
    return RpcError(grpc.StatusCode.UNAUTHENTICATED, f"service credential refused: {why}")


class ServiceVerifier:
    """Checks credentials addressed to this service by the services it trusts."""

    def __init__(
        self,
        audience: str,
        trusted: Mapping[str, Ed25519PublicKey],
        *,
        clock: Callable[[], float] = time.time,
        leeway_seconds: float = LEEWAY_SECONDS,
    ) -> None:
        self._audience = audience
        self._trusted = dict(trusted)
        self._clock = clock
        self._leeway = leeway_seconds

    def caller(self, token: str) -> Caller:
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != _VERSION:
            raise _refused(f"not a {_VERSION} credential")
        try:
            claims = json.loads(_unb64(parts[1]))
            signature = _unb64(parts[2])
        except (ValueError, binascii.Error):
            raise _refused("not a well-formed credential") from None
        if not isinstance(claims, dict):
            raise _refused("not a well-formed credential")
        issuer = claims.get("iss")
        key = self._trusted.get(issuer) if isinstance(issuer, str) else None
        if key is None or not isinstance(issuer, str):
            raise _refused(f"issued by {issuer!r}, which this service does not trust")
        try:
            key.verify(signature, f"{parts[0]}.{parts[1]}".encode())
        except InvalidSignature:
            raise _refused(f"the signature is not {issuer}'s") from None
        if claims.get("aud") != self._audience:
            raise _refused(f"addressed to {claims.get('aud')!r}, not {self._audience!r}")
        now = self._clock()
        expiry, issued = claims.get("exp"), claims.get("iat")
        if not isinstance(expiry, int) or not isinstance(issued, int):
            raise _refused("no issue or expiry time")
        if now > expiry + self._leeway:
            raise _refused("expired")
        if issued > now + self._leeway:
            raise _refused("issued in the future: check the clocks")
        tenant, calls = claims.get("tenant"), claims.get("calls")
        scopes, key_id = claims.get("scopes"), claims.get("key", "")
        if (
            not isinstance(tenant, str)
            or not (calls is None or isinstance(calls, int))
            or not isinstance(scopes, list)
            or not all(isinstance(scope, str) for scope in scopes)
            or not isinstance(key_id, str)
        ):
            raise _refused("malformed claims")
        return Caller(Tenant(tenant, calls), key_id, frozenset(scopes), service=issuer)
