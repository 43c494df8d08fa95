-- An attendee's RSVP (an iMIP REPLY or COUNTER from their calendar) goes through the same ledger as any reply:
-- handled once per Message-ID.
ALTER TABLE inbound_replies DROP CONSTRAINT inbound_replies_command_check;
ALTER TABLE inbound_replies ADD CONSTRAINT inbound_replies_command_check
    CHECK (command IN ('value', 'snooze', 'ack', 'blocked', 'none', 'rsvp'));
