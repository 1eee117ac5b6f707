-- Phone-system connectors: where a tenant's calls come in from, and how they prove it.
CREATE TABLE telephony_connectors (
    connector_id  text PRIMARY KEY,
    tenant_id     text NOT NULL,
    protocol      text NOT NULL CHECK (protocol IN ('twilio', 'audiohook', 'freeswitch')),
    display_name  text NOT NULL DEFAULT '',
    -- Which channel is the rep: twilio inbound|outbound, audiohook internal|external,
    -- freeswitch left|right|mixed.
    rep_channel   text NOT NULL,
    playbook_ids  text[] NOT NULL DEFAULT '{}',
    -- The Twilio account (AccountSid) or Genesys organization that must match; '' = any.
    account_id    text NOT NULL DEFAULT '',
    -- SHA-256 of the key the phone system sends (AudioHook X-API-KEY, FreeSWITCH bearer).
    key_hash      bytea UNIQUE,
    -- The HMAC key of the protocol's signature (Twilio auth token, AudioHook client
    -- secret), sealed with CALLCUE_TELEPHONY_SECRETS_KEY.
    sealed_secret bytea,
    create_time   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX telephony_connectors_tenant ON telephony_connectors (tenant_id, create_time);
