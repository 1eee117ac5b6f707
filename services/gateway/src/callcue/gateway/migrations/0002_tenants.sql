-- Sessions belong to the tenant of the API key that started them.
ALTER TABLE sessions ADD COLUMN tenant_id text NOT NULL DEFAULT 'default';
ALTER TABLE sessions ALTER COLUMN tenant_id DROP DEFAULT;

-- The gateway running a session renews its lease; a session whose gateway died stops
-- counting against its tenant's concurrent calls when the lease lapses, and is failed.
ALTER TABLE sessions ADD COLUMN lease_until timestamptz;

DROP INDEX sessions_newest;
CREATE INDEX sessions_newest ON sessions (tenant_id, create_time DESC, session_id DESC);
CREATE INDEX sessions_active ON sessions (tenant_id, lease_until) WHERE state = 1;
