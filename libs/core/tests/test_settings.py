from __future__ import annotations

import pytest

from callcue.core.settings import Environment, ServerSettings, SettingsError


def test_defaults() -> None:
    settings = ServerSettings.from_env(
        Environment({"DATABASE_URL": "postgresql://db/callcue"}), default_port=50099
    )
    assert (settings.port, settings.log_format, settings.host) == (50099, "json", "[::]")
    assert (settings.auth.mode, settings.auth.database_url) == (
        "api-keys",
        "postgresql://db/callcue",
    )


def test_keys_need_a_database_unless_auth_is_off() -> None:
    with pytest.raises(SettingsError, match="DATABASE_URL is required to check API keys"):
        ServerSettings.from_env(Environment({}), default_port=1)
    single = ServerSettings.from_env(
        Environment({"CALLCUE_AUTH": "none", "CALLCUE_SINGLE_TENANT": "solo"}), default_port=1
    )
    assert (single.auth.mode, single.auth.single_tenant) == ("none", "solo")
    with pytest.raises(SettingsError, match="CALLCUE_SINGLE_TENANT: 'Solo!' is not a tenant id"):
        ServerSettings.from_env(
            Environment({"CALLCUE_AUTH": "none", "CALLCUE_SINGLE_TENANT": "Solo!"}), default_port=1
        )
    with pytest.raises(SettingsError, match="CALLCUE_AUTH must be one of api-keys, none"):
        ServerSettings.from_env(Environment({"CALLCUE_AUTH": "maybe"}), default_port=1)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"CALLCUE_PORT": "http"}, "CALLCUE_PORT must be a whole number, got 'http'"),
        ({"CALLCUE_PORT": "70000"}, "CALLCUE_PORT must be between 0 and 65535, got 70000"),
        (
            {"CALLCUE_LOG_FORMAT": "xml"},
            "CALLCUE_LOG_FORMAT must be one of json, console, got 'xml'",
        ),
        (
            {"CALLCUE_SHUTDOWN_GRACE_SECONDS": "-1"},
            "CALLCUE_SHUTDOWN_GRACE_SECONDS must be between",
        ),
    ],
)
def test_bad_values_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        ServerSettings.from_env(Environment({"CALLCUE_AUTH": "none", **environ}), default_port=1)


def test_required_and_boolean() -> None:
    env = Environment({"FLAG": "maybe", "BLANK": "  "})
    with pytest.raises(SettingsError, match="DATABASE_URL is required but not set"):
        env.string("DATABASE_URL")
    with pytest.raises(SettingsError, match="BLANK is required"):
        env.string("BLANK")
    with pytest.raises(SettingsError, match="FLAG must be true or false"):
        env.boolean("FLAG", False)
