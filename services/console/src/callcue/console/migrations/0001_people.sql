-- People who sign in to the console. Passwords are kept only as Argon2id hashes.
CREATE TABLE console_users (
    username text PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    role text NOT NULL CHECK (role IN ('rep', 'supervisor', 'admin')),
    display_name text NOT NULL DEFAULT '',
    password_hash text NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX console_users_tenant ON console_users (tenant_id, username);

-- A signed-in browser. The cookie holds a random token; only its SHA-256 is kept.
CREATE TABLE console_sessions (
    token_hash bytea PRIMARY KEY,
    username text NOT NULL REFERENCES console_users (username) ON DELETE CASCADE,
    csrf_token text NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now(),
    expire_time timestamptz NOT NULL
);

CREATE INDEX console_sessions_expiry ON console_sessions (expire_time);
