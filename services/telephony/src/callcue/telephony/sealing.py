"""Secrets a connector must read back (a Twilio auth token, an AudioHook client secret:
both are HMAC keys, so a hash would not do) are sealed with Fernet (AES-128-CBC with an
HMAC-SHA256 tag) under a key that lives outside the database."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken


class SealingError(ValueError):
    pass


def new_key() -> str:
    return Fernet.generate_key().decode()


class SecretBox:
    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode())
        except ValueError:
            raise SealingError(
                "the telephony secrets key must be 32 url-safe base64-encoded bytes "
                "(make one with `callcue connectors new-secrets-key`)"
            ) from None

    def seal(self, secret: str) -> bytes:
        return self._fernet.encrypt(secret.encode())

    def open(self, sealed: bytes) -> str:
        try:
            return self._fernet.decrypt(sealed).decode()
        except InvalidToken:
            raise SealingError(
                "a connector secret does not open with this secrets key (was the key changed?)"
            ) from None
