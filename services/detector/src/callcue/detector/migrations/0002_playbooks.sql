CREATE TABLE playbooks (
    playbook_id text PRIMARY KEY,
    display_name text NOT NULL DEFAULT '',
    description text NOT NULL DEFAULT '',
    create_time timestamptz NOT NULL DEFAULT now(),
    update_time timestamptz NOT NULL DEFAULT now()
);

-- Keywords written before playbooks were a table keep theirs; calls that name no
-- playbook use "default", so it always exists.
INSERT INTO playbooks (playbook_id) SELECT DISTINCT playbook_id FROM keywords;
INSERT INTO playbooks (playbook_id, display_name) VALUES ('default', 'Default')
    ON CONFLICT (playbook_id) DO NOTHING;

ALTER TABLE keywords
    ADD COLUMN display_name text,
    ADD COLUMN normalized_name text,
    ADD COLUMN inflections boolean NOT NULL DEFAULT false,
    ADD COLUMN fuzzy_threshold real NOT NULL DEFAULT 0,
    ADD COLUMN phonetic boolean NOT NULL DEFAULT false,
    ADD COLUMN patterns text[] NOT NULL DEFAULT '{}',
    ADD COLUMN examples text[] NOT NULL DEFAULT '{}',
    ADD COLUMN semantic_threshold real NOT NULL DEFAULT 0,
    ADD COLUMN cooldown_ms bigint NOT NULL DEFAULT 0,
    ADD COLUMN max_per_call integer NOT NULL DEFAULT 0,
    ADD COLUMN exclude_phrases text[] NOT NULL DEFAULT '{}',
    ADD COLUMN active_from_ms bigint NOT NULL DEFAULT 0,
    ADD COLUMN active_until_ms bigint NOT NULL DEFAULT 0,
    ADD CONSTRAINT keywords_playbook_fk FOREIGN KEY (playbook_id)
        REFERENCES playbooks (playbook_id) ON DELETE CASCADE;

UPDATE keywords SET display_name = phrase, normalized_name = normalized_phrase;

-- Keywords of one import share a transaction, and so now(): keep their file order.
ALTER TABLE keywords ALTER COLUMN create_time SET DEFAULT clock_timestamp();

ALTER TABLE keywords
    ALTER COLUMN display_name SET NOT NULL,
    ALTER COLUMN normalized_name SET NOT NULL,
    ADD CONSTRAINT keywords_name_unique UNIQUE (playbook_id, normalized_name),
    -- A keyword may have only patterns or examples, and so no phrase.
    DROP CONSTRAINT keywords_phrase_unique;

CREATE UNIQUE INDEX keywords_phrase_unique ON keywords (playbook_id, normalized_phrase)
    WHERE normalized_phrase <> '';

-- Running calls pick up edits within a second: every detector replica LISTENs on
-- this channel and reloads the playbook named in the payload. A trigger, so that
-- every writer (RPCs, imports, SQL by hand) is heard; PostgreSQL folds identical
-- payloads of one transaction into one notification.
CREATE FUNCTION callcue_playbook_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('callcue_playbooks', OLD.playbook_id);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('callcue_playbooks', NEW.playbook_id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER keywords_changed AFTER INSERT OR UPDATE OR DELETE ON keywords
    FOR EACH ROW EXECUTE FUNCTION callcue_playbook_changed();
