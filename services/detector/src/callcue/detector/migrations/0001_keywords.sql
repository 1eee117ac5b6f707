CREATE TABLE keywords (
    keyword_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    playbook_id text NOT NULL,
    phrase text NOT NULL,
    -- The phrase as the matcher sees it, so "Too expensive!" and "too expensive" collide.
    normalized_phrase text NOT NULL,
    aliases text[] NOT NULL DEFAULT '{}',
    speaker smallint NOT NULL DEFAULT 0,
    title text NOT NULL,
    body text NOT NULL DEFAULT '',
    links text[] NOT NULL DEFAULT '{}',
    category smallint NOT NULL DEFAULT 0,
    priority integer NOT NULL DEFAULT 0,
    create_time timestamptz NOT NULL DEFAULT now(),
    update_time timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT keywords_phrase_unique UNIQUE (playbook_id, normalized_phrase)
);

CREATE INDEX keywords_playbook ON keywords (playbook_id, create_time, keyword_id);
