-- Summaries and what their lines name, the hidden disapproved list, and the subscribers'
-- votes on senders (SPEC 2.3; the statistics issue reads the votes).

-- When each subscriber's summaries are due: local times, their time zone, and the next
-- due moment (UTC seconds), which the scheduler advances when it claims a summary.
ALTER TABLE subscribers ADD COLUMN summary_times TEXT NOT NULL DEFAULT '07:00,19:00';
ALTER TABLE subscribers ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
ALTER TABLE subscribers ADD COLUMN next_summary_at BIGINT;
-- Subscribers from before this migration: due at once (the scheduler then moves them on).
UPDATE subscribers SET next_summary_at = 0;
CREATE INDEX subscribers_summary_due ON subscribers (next_summary_at) WHERE enabled;

-- When a message was decided (released, deleted): counts "since the last summary".
ALTER TABLE messages ADD COLUMN decided_at BIGINT;

CREATE TABLE summaries (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber_id BIGINT  NOT NULL REFERENCES subscribers(id),
    created_at    BIGINT  NOT NULL,
    -- Set when the SMTP server accepted it: counts run from the last summary sent.
    sent_at       BIGINT
);

CREATE TABLE summary_items (
    summary_id BIGINT NOT NULL REFERENCES summaries(id),
    short_id   TEXT   NOT NULL,
    message_id BIGINT NOT NULL REFERENCES messages(id),
    PRIMARY KEY (summary_id, short_id)
);

CREATE TABLE disapproved_senders (
    subscriber_id BIGINT NOT NULL REFERENCES subscribers(id),
    address       TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (subscriber_id, address)
);

-- One vote per decided message: 'approve' (A) or 'spam' (empty box). R is no vote.
CREATE TABLE sender_votes (
    subscriber_id BIGINT NOT NULL REFERENCES subscribers(id),
    message_id    BIGINT NOT NULL REFERENCES messages(id),
    address       TEXT   NOT NULL,
    domain        TEXT   NOT NULL,
    verdict       TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (subscriber_id, message_id)
);
CREATE INDEX sender_votes_domain ON sender_votes (domain);
