-- The append-only event log and the read models projected from it.

CREATE TABLE events (
    engagement_id text        NOT NULL,
    seq           bigint      NOT NULL,
    key           text        NOT NULL,
    type          text        NOT NULL,
    payload       jsonb       NOT NULL,
    occurred_at   timestamptz NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (engagement_id, seq),
    UNIQUE (engagement_id, key)
);

-- Append-only: the log is never rewritten.
CREATE FUNCTION events_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the events table is append-only';
END $$;
CREATE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_append_only();

CREATE TABLE engagements (
    engagement_id     text PRIMARY KEY,
    client            text NOT NULL,
    timezone          text NOT NULL,
    consultant_email  text NOT NULL,
    sponsor_email     text NOT NULL,
    phase             text NOT NULL,
    recommended       text,
    format            text,
    session_starts_at timestamptz,
    session_ends_at   timestamptz,
    session_sequence  integer,
    next_checkin_at   timestamptz,
    actions_at_risk   integer NOT NULL DEFAULT 0,
    cancel_reason     text,
    started_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    last_seq          bigint NOT NULL
);

CREATE TABLE participants (
    engagement_id text NOT NULL REFERENCES engagements ON DELETE CASCADE,
    email         text NOT NULL,
    name          text NOT NULL,
    role          text NOT NULL,
    timezone      text NOT NULL,
    PRIMARY KEY (engagement_id, email)
);

CREATE TABLE prereads (
    engagement_id text NOT NULL REFERENCES engagements ON DELETE CASCADE,
    preread_id    text NOT NULL,
    title         text NOT NULL,
    url           text NOT NULL,
    days_before   integer NOT NULL,
    added_at      timestamptz NOT NULL,
    PRIMARY KEY (engagement_id, preread_id)
);

CREATE TABLE preread_acks (
    engagement_id   text NOT NULL,
    preread_id      text NOT NULL,
    email           text NOT NULL,
    acknowledged_at timestamptz NOT NULL,
    PRIMARY KEY (engagement_id, preread_id, email),
    FOREIGN KEY (engagement_id, preread_id) REFERENCES prereads ON DELETE CASCADE
);

CREATE TABLE actions (
    engagement_id   text NOT NULL REFERENCES engagements ON DELETE CASCADE,
    action_id       text NOT NULL,
    title           text NOT NULL,
    owner_name      text NOT NULL,
    owner_email     text NOT NULL,
    owner_timezone  text NOT NULL,
    due             date NOT NULL,
    metric          jsonb NOT NULL,
    assigned_at     timestamptz NOT NULL,
    last_value      double precision,
    status          text NOT NULL,
    next_checkin_at timestamptz,
    checkins_sent   integer NOT NULL DEFAULT 0,
    missed_in_row   integer NOT NULL DEFAULT 0,
    escalations     integer NOT NULL DEFAULT 0,
    closed_reason   text,
    PRIMARY KEY (engagement_id, action_id)
);

CREATE TABLE checkins (
    engagement_id text NOT NULL,
    action_id     text NOT NULL,
    seq           bigint NOT NULL,
    kind          text NOT NULL,          -- requested | reported | missed | snoozed | escalated
    number        integer,
    value         double precision,
    note          text,
    status        text,
    at            timestamptz NOT NULL,
    PRIMARY KEY (engagement_id, seq),
    FOREIGN KEY (engagement_id, action_id) REFERENCES actions ON DELETE CASCADE
);

CREATE TABLE outbound_messages (
    engagement_id text NOT NULL REFERENCES engagements ON DELETE CASCADE,
    message_id    text NOT NULL,
    kind          text NOT NULL,
    recipients    text[] NOT NULL,
    subject       text NOT NULL,
    action_id     text,
    sent_at       timestamptz NOT NULL,
    PRIMARY KEY (engagement_id, message_id)
);

CREATE INDEX engagements_phase ON engagements (phase);
CREATE INDEX checkins_action ON checkins (engagement_id, action_id, seq);
