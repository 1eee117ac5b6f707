"""Which API key the CLI sends: --api-key, else $CALLCUE_API_KEY, else the key `callcue dev
up` wrote for the local stack."""

from __future__ import annotations

import os
from pathlib import Path

from callcue.core.api_keys import DEFAULT_TENANT, ApiKeyStore

DEV_KEY_FILE = Path(".run") / "api-key"
DEV_DATABASE_FILE = Path(".run") / "database-url"


class NoApiKey(Exception):
    def __init__(self) -> None:
        super().__init__(
            "no API key: pass --api-key, set CALLCUE_API_KEY, or start the local stack with "
            "`make run` (it writes .run/api-key); operators create keys with `callcue keys create`"
        )


def resolve(flag: str | None) -> str:
    key = flag or os.environ.get("CALLCUE_API_KEY")
    if key:
        return key.strip()
    if DEV_KEY_FILE.is_file():
        return DEV_KEY_FILE.read_text().strip()
    raise NoApiKey


async def dev_key(keys: ApiKeyStore, state_dir: Path) -> str:
    """The local stack's key for the default tenant: the one kept from an earlier run if it
    still works, else a new one. Kept readable by this user only."""
    path = state_dir / DEV_KEY_FILE.name
    if path.is_file():
        kept = path.read_text().strip()
        if await keys.tenant_of(kept) is not None:
            return kept
    _, key = await keys.create_key(DEFAULT_TENANT, "callcue dev up")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    return key
