-- Every reply that passed the token and sender checks, by its own Message-ID: a relay that delivers the same
-- reply twice (or a replayed copy) finds the row final and changes nothing.

CREATE TABLE inbound_replies (
    message_id    text        PRIMARY KEY,
    engagement_id text        NOT NULL,
    action_id     text,
    preread_id    text,
    sender        text        NOT NULL,
    command       text        NOT NULL CHECK (command IN ('value', 'snooze', 'ack')),
    status        text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'applied', 'rejected')),
    reason        text,
    attempts      integer     NOT NULL DEFAULT 0,
    received_at   timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);

CREATE INDEX inbound_replies_engagement ON inbound_replies (engagement_id, received_at);
