"""The doors a service opens, from its settings: tenant API keys (checked against
PostgreSQL) for public services, callcue services' credentials (checked against the
trusted public keys) for internal ones, both for a service with both kinds of RPCs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog

from callcue.core import api_keys, database, service_tokens
from callcue.core.auth import ApiKeyAuthenticator, Authenticator, CallerAuthenticator, SingleTenant
from callcue.core.settings import AuthSettings

log = structlog.get_logger("callcue.auth")


async def open_authenticator(
    settings: AuthSettings,
) -> tuple[Authenticator, Callable[[], Awaitable[None]]]:
    """The authenticator the settings ask for, and how to release what it holds."""

    async def nothing() -> None:
        return None

    if settings.mode == "none":
        log.warning(
            "authentication is off: every caller is one tenant", tenant=settings.single_tenant
        )
        return SingleTenant(settings.single_tenant), nothing
    services = None
    if settings.trusted_services is not None:
        trusted = {
            name: service_tokens.public_key(pem, f"the trusted key of {name}")
            for name, pem in settings.trusted_services.items()
        }
        services = service_tokens.ServiceVerifier(settings.service, trusted)
    header = service_tokens.SERVICE_CREDENTIAL
    if not settings.public:
        return CallerAuthenticator(None, services, header), nothing
    assert settings.database_url is not None
    await database.migrate(settings.database_url, api_keys.COMPONENT, api_keys.MIGRATIONS)
    pool = await database.open_pool(settings.database_url, max_size=4)
    keys = ApiKeyAuthenticator(api_keys.ApiKeyStore(pool), cache_seconds=settings.cache_seconds)
    return CallerAuthenticator(keys, services, header), pool.close


def signer(settings: AuthSettings) -> service_tokens.ServiceSigner | None:
    """How this service signs its calls to internal RPCs; None with authentication off."""
    if settings.mode == "none" or settings.service_key is None:
        return None
    key = service_tokens.private_key(settings.service_key, f"the service key of {settings.service}")
    return service_tokens.ServiceSigner(settings.service, key)
