CREATE TABLE sessions (
    session_id uuid PRIMARY KEY,
    source smallint NOT NULL,
    state smallint NOT NULL,
    title text NOT NULL DEFAULT '',
    metadata jsonb NOT NULL DEFAULT '{}',
    channel_roles smallint[] NOT NULL DEFAULT '{}',
    language_code text NOT NULL DEFAULT '',
    playbook_ids text[] NOT NULL DEFAULT '{}',
    create_time timestamptz NOT NULL DEFAULT now(),
    end_time timestamptz,
    audio_seconds double precision NOT NULL DEFAULT 0,
    error_message text NOT NULL DEFAULT ''
);

CREATE INDEX sessions_newest ON sessions (create_time DESC, session_id DESC);

-- Final segments only; the serialized TranscriptSegment keeps words and timings.
CREATE TABLE transcript_segments (
    session_id uuid NOT NULL REFERENCES sessions ON DELETE CASCADE,
    segment_id text NOT NULL,
    channel smallint NOT NULL,
    start_seconds double precision NOT NULL,
    text text NOT NULL,
    segment bytea NOT NULL,
    PRIMARY KEY (session_id, segment_id)
);

CREATE TABLE detections (
    session_id uuid NOT NULL REFERENCES sessions ON DELETE CASCADE,
    detection_id uuid NOT NULL,
    keyword_id text NOT NULL,
    start_seconds double precision NOT NULL,
    detection bytea NOT NULL,
    PRIMARY KEY (session_id, detection_id)
);
