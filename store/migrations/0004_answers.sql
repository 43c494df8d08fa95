-- Answer scopes: what a signed link or Reply-To token grants, named by the opaque id in the token (so the
-- Reply-To local part stays within RFC 5321's 64 octets). Written before the mail that carries the token.

CREATE TABLE answer_scopes (
    scope_id      bytea       PRIMARY KEY,
    engagement_id text        NOT NULL,
    action_id     text,
    preread_id    text,
    number        integer     NOT NULL DEFAULT 0,
    recipient     text        NOT NULL,
    expires_at    timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- The ledger of answers now holds every way in (a reply by SMTP or IMAP, the check-in page) and every reading,
-- with what the sender was told.
ALTER TABLE inbound_replies DROP CONSTRAINT inbound_replies_command_check;
ALTER TABLE inbound_replies ADD CONSTRAINT inbound_replies_command_check
    CHECK (command IN ('value', 'snooze', 'ack', 'blocked', 'none'));
ALTER TABLE inbound_replies ADD COLUMN channel text NOT NULL DEFAULT 'smtp'
    CHECK (channel IN ('smtp', 'imap', 'page'));
ALTER TABLE inbound_replies ADD COLUMN detail text;   -- what the sender was told
ALTER TABLE inbound_replies ADD COLUMN answer text;   -- the answer mail (JSON), sent again on a redelivery
