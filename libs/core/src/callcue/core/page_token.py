"""Opaque page tokens for keyset pagination on (creation time, id)."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime

from callcue.core import errors


def encode(created: datetime, key: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{created.isoformat()}|{key}".encode()).decode()


def decode(token: str) -> tuple[datetime, uuid.UUID]:
    try:
        created, key = base64.urlsafe_b64decode(token.encode()).decode().split("|")
        return datetime.fromisoformat(created), uuid.UUID(key)
    except (ValueError, UnicodeDecodeError):
        raise errors.invalid_argument(
            "page_token", "is not a token this service returned"
        ) from None
