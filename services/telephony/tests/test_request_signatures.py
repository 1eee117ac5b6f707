"""The handshake signatures, against the examples the protocols publish."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from callcue.telephony.request_signatures import (
    NonceCache,
    SignatureError,
    twilio_signature_valid,
    verify_audiohook,
)

# The example request of the AudioHook protocol documentation (Establishing a connection):
# wss://audiohook.example.com/api/v1/voicebiometrics/ws with the API key and client secret
# below gives this signature.
EXAMPLE = {
    "audiohook-organization-id": "d7934305-0972-4844-938e-9060eef73d05",
    "audiohook-correlation-id": "e160e428-53e2-487c-977d-96989bf5c99d",
    "audiohook-session-id": "30b0e395-84d3-4570-ac13-9a62d8f514c0",
    "x-api-key": "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh",
    "signature": "sig1=:NZBwyBHRRyRoeLqy1IzOa9VYBuI8TgMFt2GRDkDuJh4=:",
    "signature-input": (
        'sig1=("@request-target" "@authority" "audiohook-organization-id" '
        '"audiohook-session-id" "audiohook-correlation-id" "x-api-key");'
        'keyid="SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh";nonce="VGhpc0lzQVVuaXF1ZU5vbmNl";'
        'alg="hmac-sha256";created=1641013200;expires=3282026430'
    ),
}
SECRET = "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU="
TARGET, AUTHORITY = "/api/v1/voicebiometrics/ws", "audiohook.example.com"
SIGNED_AT = 1641013200


def verify(
    headers: dict[str, str], *, now: float = SIGNED_AT + 1, nonces: NonceCache | None = None
) -> None:
    verify_audiohook(headers, TARGET, AUTHORITY, SECRET, nonces or NonceCache(), clock=lambda: now)


def test_the_published_audiohook_example_verifies() -> None:
    verify(EXAMPLE)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"audiohook-session-id": "30b0e395-84d3-4570-ac13-9a62d8f514c1"}, "does not match"),
        ({"x-api-key": "another key"}, "keyid"),
        ({"signature": "sig1=:AAAA:"}, "does not match"),
        ({"signature": "sig2=:NZBwyBHRRyRoeLqy1IzOa9VYBuI8TgMFt2GRDkDuJh4=:"}, "labelled"),
        ({"signature-input": 'sig1=("@authority");keyid="x";created=1'}, "does not cover"),
    ],
)
def test_a_changed_request_does_not_verify(change: dict[str, str], message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        verify({**EXAMPLE, **change})


def test_the_authority_and_target_are_signed() -> None:
    with pytest.raises(SignatureError):
        verify_audiohook(
            EXAMPLE, "/other", AUTHORITY, SECRET, NonceCache(), clock=lambda: SIGNED_AT
        )
    with pytest.raises(SignatureError):
        verify_audiohook(
            EXAMPLE, TARGET, "evil.example.com", SECRET, NonceCache(), clock=lambda: SIGNED_AT
        )


def test_a_signature_from_the_future_or_replayed_is_refused() -> None:
    with pytest.raises(SignatureError, match="future"):
        verify(EXAMPLE, now=SIGNED_AT - 3600)
    nonces = NonceCache()
    verify(EXAMPLE, nonces=nonces)
    with pytest.raises(SignatureError, match="nonce"):
        verify(EXAMPLE, nonces=nonces)


def test_twilio_signs_the_url_with_the_auth_token() -> None:
    url = "wss://calls.example.com/twilio/tc_1?x=1"
    signature = base64.b64encode(hmac.new(b"token", url.encode(), hashlib.sha1).digest()).decode()
    assert twilio_signature_valid("token", url, signature)
    assert not twilio_signature_valid("token", url.replace("x=1", "x=2"), signature)
    assert not twilio_signature_valid("other", url, signature)
