"""The API key `callcue dev up` keeps for the local stack, which the CLI falls back to."""

from __future__ import annotations

from pathlib import Path

from callcue.core import scopes
from callcue.core.api_keys import DEFAULT_TENANT, ApiKeyStore

DEV_KEY_FILE = Path(".run") / "api-key"
DEV_DATABASE_FILE = Path(".run") / "database-url"


class NoApiKey(Exception):
    def __init__(self) -> None:
        super().__init__(
            "no API key: pass --api-key, set CALLCUE_API_KEY, or start the local stack with "
            "`make run` (it writes .run/api-key); operators create keys with `callcue keys create`"
        )


async def dev_key(keys: ApiKeyStore, state_dir: Path) -> str:
    """The local stack's key for the default tenant: the one kept from an earlier run if it
    still works, else a new one. Kept readable by this user only."""
    path = state_dir / DEV_KEY_FILE.name
    if path.is_file():
        kept = path.read_text().strip()
        if await keys.grant_of(kept) is not None:
            return kept
    _, key = await keys.create_key(DEFAULT_TENANT, "callcue dev up", [scopes.ADMIN])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    return key
