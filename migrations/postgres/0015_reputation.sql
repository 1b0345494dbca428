-- Operators' reputation tables (seed 001, quorum-reputation): per handoff IP, network, IPv6
-- subnet, sender domain, linked domain and Reply-To address, decayed counts of what came
-- with it, each a sum of 2^((t - 2026-01-01) / 30 days) over its events, so an event is one
-- addition and the table is never rescanned; reading multiplies by the same at the time.
CREATE TABLE reputation (
    kind        TEXT   NOT NULL,
    name        TEXT   NOT NULL,
    messages    DOUBLE PRECISION NOT NULL,
    -- Distinct recipients, each at the weight of the last message it got.
    recipients  DOUBLE PRECISION NOT NULL,
    spam        DOUBLE PRECISION NOT NULL DEFAULT 0,
    approvals   DOUBLE PRECISION NOT NULL DEFAULT 0,
    probe       DOUBLE PRECISION NOT NULL DEFAULT 0,
    nonexistent DOUBLE PRECISION NOT NULL DEFAULT 0,
    forged      DOUBLE PRECISION NOT NULL DEFAULT 0,
    -- Delivered to the Inbox from a sender the recipient approved: ham by their standing word.
    inbox       DOUBLE PRECISION NOT NULL DEFAULT 0,
    first_seen  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL,
    PRIMARY KEY (kind, name)
);
-- Each recipient's weight under each key, for the distinct-recipient count.
CREATE TABLE reputation_recipients (
    kind          TEXT   NOT NULL,
    name          TEXT   NOT NULL,
    subscriber_id BIGINT NOT NULL,
    mass          DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (kind, name, subscriber_id)
);
CREATE INDEX reputation_recipients_by_subscriber ON reputation_recipients (subscriber_id);
-- Each message's keys, which its votes, bounce and forgery verdict count under.
CREATE TABLE message_reputation (
    message_id BIGINT NOT NULL,
    kind       TEXT   NOT NULL,
    name       TEXT   NOT NULL,
    PRIMARY KEY (message_id, kind, name)
);
-- The campaign report reads a window of arrivals.
CREATE INDEX messages_by_arrival ON messages (quarantined_at);
