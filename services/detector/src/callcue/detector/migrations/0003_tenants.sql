-- Playbooks and their keywords belong to a tenant; playbook ids are unique per tenant.
-- What existed before tenants belongs to the single tenant of a setup without keys.
ALTER TABLE playbooks ADD COLUMN tenant_id text NOT NULL DEFAULT 'default';
ALTER TABLE keywords ADD COLUMN tenant_id text NOT NULL DEFAULT 'default';
ALTER TABLE playbooks ALTER COLUMN tenant_id DROP DEFAULT;
ALTER TABLE keywords ALTER COLUMN tenant_id DROP DEFAULT;

ALTER TABLE keywords
    DROP CONSTRAINT keywords_playbook_fk,
    DROP CONSTRAINT keywords_name_unique;
DROP INDEX keywords_phrase_unique;
DROP INDEX keywords_playbook;

ALTER TABLE playbooks DROP CONSTRAINT playbooks_pkey;
ALTER TABLE playbooks ADD PRIMARY KEY (tenant_id, playbook_id);

ALTER TABLE keywords
    ADD CONSTRAINT keywords_playbook_fk FOREIGN KEY (tenant_id, playbook_id)
        REFERENCES playbooks (tenant_id, playbook_id) ON DELETE CASCADE,
    ADD CONSTRAINT keywords_name_unique UNIQUE (tenant_id, playbook_id, normalized_name);
CREATE UNIQUE INDEX keywords_phrase_unique ON keywords (tenant_id, playbook_id, normalized_phrase)
    WHERE normalized_phrase <> '';
CREATE INDEX keywords_playbook ON keywords (tenant_id, playbook_id, create_time, keyword_id);

-- The payload names the tenant too: "<tenant>/<playbook>".
CREATE OR REPLACE FUNCTION callcue_playbook_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('callcue_playbooks', OLD.tenant_id || '/' || OLD.playbook_id);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('callcue_playbooks', NEW.tenant_id || '/' || NEW.playbook_id);
    END IF;
    RETURN NULL;
END
$$;
