CREATE TABLE tenants (
    tenant_id text PRIMARY KEY,
    display_name text NOT NULL DEFAULT '',
    -- NULL: the deployment's default limit applies.
    max_concurrent_calls integer,
    create_time timestamptz NOT NULL DEFAULT now()
);

-- A key is shown once, when created; only its SHA-256 is kept. Keys carry 256 random
-- bits, so a fast hash is enough: there is nothing to brute-force.
CREATE TABLE api_keys (
    key_id text PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    key_hash bytea NOT NULL,
    display_name text NOT NULL DEFAULT '',
    create_time timestamptz NOT NULL DEFAULT now(),
    revoke_time timestamptz
);

CREATE INDEX api_keys_tenant ON api_keys (tenant_id, create_time);
