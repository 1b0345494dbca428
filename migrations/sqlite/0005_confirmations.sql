-- Confirmations to unknown senders (SPEC 2.4): one row per confirmation sent, named by the
-- held message it asks about (its VERP address carries that id). The limits (one per
-- sender per subscriber per 24 h, a global hourly cap) are read from here.

ALTER TABLE subscribers ADD COLUMN confirmations BOOLEAN NOT NULL DEFAULT TRUE;

CREATE TABLE confirmations (
    message_id    BIGINT PRIMARY KEY REFERENCES messages(id),
    subscriber_id BIGINT NOT NULL REFERENCES subscribers(id),
    sender        TEXT   NOT NULL,
    sent_at       BIGINT NOT NULL,
    -- NULL until something comes back: 'bounced', 'replied' or 'auto_replied'.
    outcome       TEXT,
    answered_at   BIGINT
);
CREATE INDEX confirmations_by_sender ON confirmations (subscriber_id, sender, sent_at);
CREATE INDEX confirmations_by_time ON confirmations (sent_at);
