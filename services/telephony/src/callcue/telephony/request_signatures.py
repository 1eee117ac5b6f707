"""The signatures phone systems put on their WebSocket handshakes.

Twilio signs the URL it connects to with the account's auth token (HMAC-SHA1, base64, in
X-Twilio-Signature). Genesys AudioHook signs named parts of the request with the
integration's client secret as an HTTP Message Signature (RFC 9421, HMAC-SHA256, the key
id being the API key)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

# Seconds a signature's "created" may be in the future (clock skew) and the longest a
# signature without "expires" is taken for.
CLOCK_SKEW = 60
MAX_AGE = 300
# Components a valid AudioHook signature must cover.
AUDIOHOOK_COMPONENTS = (
    "@request-target",
    "@authority",
    "audiohook-organization-id",
    "audiohook-session-id",
    "audiohook-correlation-id",
    "x-api-key",
)


class SignatureError(ValueError):
    pass


def twilio_signature_valid(auth_token: str, url: str, signature: str) -> bool:
    digest = hmac.new(auth_token.encode(), url.encode(), hashlib.sha1).digest()
    return hmac.compare_digest(base64.b64encode(digest).decode(), signature.strip())


@dataclass(frozen=True)
class SignatureInput:
    label: str
    components: tuple[str, ...]
    # The parameters as sent, in order, and the whole inner list as serialised.
    params: dict[str, str | int]
    serialized: str


_INPUT = re.compile(r'^\s*([a-z][a-z0-9_.*-]*)=(\((?:\s*"[^"]*")*\s*\)((?:;[^;]+)*))\s*$')
_PARAM = re.compile(r'^([a-z][a-z0-9_.*-]*)=(?:"([^"]*)"|(-?\d+))$')
_SIGNATURE = re.compile(r"^\s*([a-z][a-z0-9_.*-]*)=:([A-Za-z0-9+/=]*):\s*$")


def parse_signature_input(header: str) -> SignatureInput:
    """One signature's Signature-Input (the structured-field subset AudioHook sends)."""
    match = _INPUT.match(header)
    if match is None:
        raise SignatureError("Signature-Input is not one signature's inner list")
    label, serialized, params_text = match.group(1), match.group(2), match.group(3)
    components = tuple(re.findall(r'"([^"]*)"', serialized[: serialized.index(")") + 1]))
    params: dict[str, str | int] = {}
    for raw in params_text.split(";")[1:]:
        param = _PARAM.match(raw.strip())
        if param is None:
            raise SignatureError(f"Signature-Input has a malformed parameter {raw.strip()!r}")
        params[param.group(1)] = (
            param.group(2) if param.group(2) is not None else int(param.group(3))
        )
    return SignatureInput(label, components, params, serialized)


def parse_signature(header: str, label: str) -> bytes:
    for item in header.split(","):
        match = _SIGNATURE.match(item)
        if match and match.group(1) == label:
            try:
                return base64.b64decode(match.group(2), validate=True)
            except binascii.Error:
                break
    raise SignatureError(f"no signature labelled {label!r} in the Signature header")


def signature_base(
    signed: SignatureInput, target: str, authority: str, headers: Mapping[str, str]
) -> str:
    lines = []
    for component in signed.components:
        if component == "@request-target":
            value = target
        elif component == "@authority":
            value = authority.lower()
        elif component.startswith("@"):
            raise SignatureError(f"the signed component {component} is not supported")
        elif component in headers:
            value = headers[component].strip()
        else:
            raise SignatureError(f"the signed header {component} is missing")
        lines.append(f'"{component}": {value}')
    lines.append(f'"@signature-params": {signed.serialized}')
    return "\n".join(lines)


class NonceCache:
    """Nonces seen within the signatures' lifetime: a captured handshake cannot be replayed."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._capacity = capacity

    def first_use(self, nonce: str, until: float, now: float) -> bool:
        while self._seen and (
            next(iter(self._seen.values())) < now or len(self._seen) > self._capacity
        ):
            self._seen.popitem(last=False)
        if nonce in self._seen:
            return False
        self._seen[nonce] = until
        return True


def verify_audiohook(
    headers: Mapping[str, str],
    target: str,
    authority: str,
    client_secret: str,
    nonces: NonceCache,
    clock: Callable[[], float] = time.time,
) -> None:
    """Raises SignatureError unless the handshake carries a valid, fresh signature by
    ``client_secret`` (base64, as Genesys shows it) over the AudioHook headers."""
    signature_input = headers.get("signature-input")
    signature = headers.get("signature")
    if not signature_input or not signature:
        raise SignatureError("the request is not signed (Signature and Signature-Input)")
    signed = parse_signature_input(signature_input)
    missing = [name for name in AUDIOHOOK_COMPONENTS if name not in signed.components]
    if missing:
        raise SignatureError(f"the signature does not cover {', '.join(missing)}")
    if signed.params.get("alg", "hmac-sha256") != "hmac-sha256":
        raise SignatureError("only hmac-sha256 signatures are accepted")
    if signed.params.get("keyid") != headers.get("x-api-key"):
        raise SignatureError("the signature's keyid is not the request's API key")
    now = clock()
    created = signed.params.get("created")
    expires = signed.params.get("expires")
    if not isinstance(created, int):
        raise SignatureError("the signature has no creation time")
    if created > now + CLOCK_SKEW:
        raise SignatureError("the signature was created in the future")
    until = float(expires) if isinstance(expires, int) else created + MAX_AGE
    if until < now or (not isinstance(expires, int) and created + MAX_AGE < now):
        raise SignatureError("the signature has expired")
    try:
        key = base64.b64decode(client_secret, validate=True)
    except binascii.Error:
        key = client_secret.encode()
    base = signature_base(signed, target, authority, headers)
    expected = hmac.new(key, base.encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, parse_signature(signature, signed.label)):
        raise SignatureError("the signature does not match")
    nonce = signed.params.get("nonce")
    if isinstance(nonce, str) and not nonces.first_use(nonce, min(until, now + MAX_AGE), now):
        raise SignatureError("the signature's nonce was used before")
