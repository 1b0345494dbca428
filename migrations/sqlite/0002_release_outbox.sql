-- Released messages waiting for, or done with, SMTP delivery to the subscriber (SPEC 2.5).
-- A release counts as done only after the SMTP server's 250 (sent_at set); until then
-- the row is retried with backoff. One row per message: a message is released once.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id      BIGINT  NOT NULL UNIQUE REFERENCES messages(id),
    mailbox_id      BIGINT  NOT NULL REFERENCES mailboxes(id),
    recipient       TEXT    NOT NULL,
    attempts        BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_error      TEXT,
    created_at      BIGINT  NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE sent_at IS NULL;
