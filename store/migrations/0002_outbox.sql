-- Every email, recorded before it is handed to the SMTP relay: a retried send finds it `sent` and stops.

CREATE TABLE outbox (
    message_id    text        PRIMARY KEY,
    engagement_id text        NOT NULL,
    key           text        NOT NULL,
    kind          text        NOT NULL,
    recipients    text[]      NOT NULL,
    subject       text        NOT NULL,
    status        text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    sent_at       timestamptz,
    attempts      integer     NOT NULL DEFAULT 0
);

CREATE INDEX outbox_engagement ON outbox (engagement_id, created_at);
CREATE INDEX outbox_pending ON outbox (created_at) WHERE status = 'pending';
