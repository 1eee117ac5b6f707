-- What each tenant's transcripts keep of the personal data said on its calls, by kind
-- (callcue.gateway.redaction_policy); a kind without a row is masked.
CREATE TABLE redaction_policies (
    tenant_id text NOT NULL,
    kind text NOT NULL,
    action text NOT NULL CHECK (action IN ('mask', 'drop', 'keep')),
    update_time timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, kind),
    CHECK (NOT (kind IN ('payment_card', 'ssn') AND action = 'keep'))
);
